package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/blastradius/blastradius/internal/telemetry"
)

// Sentinel errors of the Registry and its config loader. A *ConfigError
// from LoadConfig unwraps to one of them.
var (
	// ErrUnknownGate: a config entry names no registered gate.
	ErrUnknownGate = errors.New("rollout: unknown gate")
	// ErrRetired: a name is a tombstone (see Registry.Retire).
	ErrRetired = errors.New("rollout: retired gate name")
	// ErrOutOfRange: a percent is outside [0, 100] or not a multiple of
	// 0.0001.
	ErrOutOfRange = errors.New("rollout: percent out of range")
	// ErrMalformed: the document is not valid config JSON.
	ErrMalformed = errors.New("rollout: malformed config")
	// ErrDuplicate: a name is registered twice or appears twice in a config.
	ErrDuplicate = errors.New("rollout: duplicate gate name")
	// ErrTooLarge: the document exceeds MaxConfigBytes.
	ErrTooLarge = errors.New("rollout: config too large")
)

// MaxConfigBytes bounds the size of a config document: it is untrusted
// input.
const MaxConfigBytes = 1 << 20

// maxReason bounds the length of a kill reason from config or the admin
// handler.
const maxReason = 1024

// ConfigError is the error of a rejected config document. LoadConfig
// rejects a document whole: no entry of it is applied. LoadConfig sets
// Err; a ConfigError without it is not a valid error.
type ConfigError struct {
	// Index is the position of the offending entry in "gates", or -1 when
	// the document as a whole is at fault.
	Index int
	// Entry is the gate name of the offending entry, if known.
	Entry string
	// Err is, or wraps, one of ErrUnknownGate, ErrRetired, ErrOutOfRange,
	// ErrMalformed, ErrDuplicate or ErrTooLarge, or the reader's error.
	Err error
}

// Error names the offending entry.
func (e *ConfigError) Error() string {
	msg := strings.TrimPrefix(e.Err.Error(), "rollout: ")
	switch {
	case e.Index < 0:
		return "rollout: config rejected: " + msg
	case e.Entry == "":
		return fmt.Sprintf("rollout: config rejected: gates[%d]: %s", e.Index, msg)
	default:
		return fmt.Sprintf("rollout: config rejected: gates[%d] %q: %s", e.Index, e.Entry, msg)
	}
}

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// ConfigInfo describes the config a Registry has applied. The zero value
// means that none has been.
type ConfigInfo struct {
	// Version is the document's "version".
	Version string `json:"version"`
	// Hash is "sha256:" and the hex SHA-256 of a canonical encoding of the
	// applied config, so instances that run the same config report the same
	// hash whatever the formatting, entry order or number spelling of their
	// documents. The encoding is compact JSON (encoding/json's escaping):
	//
	//	{"version":V,"gates":[{"name":N,"percent_units":U,"killed":K,"reason":R},...]}
	//
	// with entries sorted by name and U the percent × 10⁴ as an integer, or
	// null for an entry without "percent". It is pinned by a test.
	Hash string `json:"hash"`
	// Gates is the number of entries.
	Gates int `json:"gates"`
	// Applied is when the registry applied it, by the registry's clock.
	Applied time.Time `json:"applied"`
}

// Registry holds the gates a service knows, by name, and the tombstones of
// names that must never be used again. It applies JSON config documents to
// its gates. Its methods are safe for concurrent use. The zero value is not
// usable: use NewRegistry.
type Registry struct {
	now   func() time.Time
	log   *slog.Logger
	noisy *slog.Logger

	loads        metric.Int64Counter
	appliedOpts  []metric.AddOption
	rejectedOpts []metric.AddOption

	notify notifier // OnChange's subscribers

	mu      sync.Mutex // guards the fields below and serializes LoadConfig
	gates   map[string]*Gate
	retired map[string]string
	applied map[string]configEntry
	info    ConfigInfo
}

// NewRegistry returns an empty registry. Options: WithClock, WithLogger and
// WithMeterProvider. Errors wrap ErrInvalidConfig.
func NewRegistry(opts ...RegistryOption) (*Registry, error) {
	var c registryConfig
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyRegistry(&c); err != nil {
			return nil, err
		}
	}
	noisy := slog.New(logBudget(c.logger, c.mp, c.now)) // a nil clock: the budget's monotonic one
	if c.now == nil {
		c.now = time.Now
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	r := &Registry{
		now:     c.now,
		log:     c.logger,
		noisy:   noisy,
		gates:   make(map[string]*Gate),
		retired: make(map[string]string),
		applied: make(map[string]configEntry),
	}
	m := telemetry.Meter(c.mp, "rollout")
	r.loads = telemetry.Counter(m, "blastradius.rollout.config.loads",
		"Config documents given to Registry.LoadConfig, by result.", "{load}")
	r.appliedOpts = telemetry.AddOpts(attribute.String("result", "applied"))
	r.rejectedOpts = telemetry.AddOpts(attribute.String("result", "rejected"))
	return r, nil
}

// Register adds g under its name. A name already registered wraps
// ErrDuplicate; a retired name wraps ErrRetired.
func (r *Registry) Register(g *Gate) error {
	if g == nil {
		return invalid("Register(nil): needs a gate")
	}
	r.mu.Lock()
	if why, ok := r.retired[g.name]; ok {
		r.mu.Unlock()
		return fmt.Errorf("%w: %q (%s)", ErrRetired, g.name, why)
	}
	if _, ok := r.gates[g.name]; ok {
		r.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrDuplicate, g.name)
	}
	r.gates[g.name] = g
	g.addRegistry(r)
	r.mu.Unlock()
	r.changed(g.name)
	return nil
}

// Retire records a tombstone for name, which must be a valid gate name (see
// New): it can never be registered again in this registry, and a config
// that names it is rejected with ErrRetired. Keep tombstones in code for as
// long as old configs may exist, so that a name is never repurposed.
// Retiring a registered name is an error.
func (r *Registry) Retire(name, reason string) error {
	if err := checkName("Retire", name); err != nil {
		return err
	}
	r.mu.Lock()
	if _, ok := r.gates[name]; ok {
		r.mu.Unlock()
		return fmt.Errorf("%w: cannot retire %q: it is registered", ErrInvalidConfig, name)
	}
	r.retired[name] = reason
	r.mu.Unlock()
	r.changed(name)
	return nil
}

// Gate returns the gate registered under name.
func (r *Registry) Gate(name string) (*Gate, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.gates[name]
	return g, ok
}

// Gates returns the registered gates sorted by name.
func (r *Registry) Gates() []*Gate {
	r.mu.Lock()
	gs := make([]*Gate, 0, len(r.gates))
	for _, g := range r.gates {
		gs = append(gs, g)
	}
	r.mu.Unlock()
	slices.SortFunc(gs, func(a, b *Gate) int { return strings.Compare(a.name, b.name) })
	return gs
}

// Config reports the config applied last; it is the zero ConfigInfo before
// the first successful LoadConfig.
func (r *Registry) Config() ConfigInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info
}

// evaluate evaluates the schedule of every gate.
func (r *Registry) evaluate() {
	for _, g := range r.Gates() {
		g.evaluate(g.now())
	}
}

// configEntry is a validated entry of a config document.
type configEntry struct {
	Name   string  `json:"name"`
	Units  *uint32 `json:"percent_units"`
	Killed bool    `json:"killed"`
	Reason string  `json:"reason"`
}

type configDoc struct {
	version string
	entries []configEntry
}

// LoadConfig reads a JSON config document of at most MaxConfigBytes:
//
//	{
//	  "version": "2026-11-22.1",
//	  "gates": [
//	    {"name": "checkout-v2", "percent": 5},
//	    {"name": "search-v3", "killed": true, "reason": "INC-123"}
//	  ]
//	}
//
// "version" is required. Each entry needs "name" and may set "percent"
// (0 to 100, in steps of 0.0001), "killed" and "reason" (of the kill).
// Field names are case-sensitive: a field not spelled exactly as above, or
// given twice in one object, makes the document malformed, and so does a
// "name" that is not a valid gate name (see New).
//
// The document is validated whole before anything is applied. If any entry
// names an unknown gate, a retired name or a duplicate, or has an invalid
// percent, or the document is malformed or too large, LoadConfig returns a
// *ConfigError naming the entry and the config applied before stays in
// force.
//
// Applying changes a gate only where its entry differs from the previous
// applied config: a new or changed percent calls SetPercent (which stops a
// schedule); killed turning true kills the gate (KilledByConfig); killed
// turning false resumes it if the config killed it. So a kill or percent
// set through the admin handler holds until the config changes that gate's
// entry. Gates without an entry, and entries removed from the config, are
// left as they are.
func (r *Registry) LoadConfig(rd io.Reader) (ConfigInfo, error) {
	info, changed, err := r.loadConfig(rd)
	for _, g := range changed {
		g.notify()
	}
	if err != nil {
		r.loads.Add(context.Background(), 1, r.rejectedOpts...)
		r.noisy.Error("rollout: config rejected; the previous config stays in force", "error", err)
		return ConfigInfo{}, err
	}
	r.loads.Add(context.Background(), 1, r.appliedOpts...)
	r.log.Info("rollout: config applied", "version", info.Version, "hash", info.Hash, "gates", info.Gates)
	r.changed("")
	return info, nil
}

// loadConfig is LoadConfig; it returns the gates it changed, to be
// notified once r.mu is released.
func (r *Registry) loadConfig(rd io.Reader) (ConfigInfo, []*Gate, error) {
	data, err := io.ReadAll(io.LimitReader(rd, MaxConfigBytes+1))
	if err != nil {
		return ConfigInfo{}, nil, &ConfigError{Index: -1, Err: fmt.Errorf("rollout: read: %w", err)}
	}
	if len(data) > MaxConfigBytes {
		return ConfigInfo{}, nil, &ConfigError{Index: -1, Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxConfigBytes)}
	}
	doc, err := parseConfig(data)
	if err != nil {
		return ConfigInfo{}, nil, err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	gates := make([]*Gate, len(doc.entries))
	for i, e := range doc.entries {
		if why, ok := r.retired[e.Name]; ok {
			return ConfigInfo{}, nil, &ConfigError{Index: i, Entry: e.Name, Err: fmt.Errorf("%w (%s)", ErrRetired, why)}
		}
		g, ok := r.gates[e.Name]
		if !ok {
			return ConfigInfo{}, nil, &ConfigError{Index: i, Entry: e.Name, Err: ErrUnknownGate}
		}
		gates[i] = g
	}

	// Everything is valid: apply the differences.
	next := make(map[string]configEntry, len(doc.entries))
	var touched []*Gate
	for i, e := range doc.entries {
		g := gates[i]
		prev, had := r.applied[e.Name]
		changed := false
		setPercent := e.Units != nil && (!had || prev.Units == nil || *prev.Units != *e.Units)
		// Kill before a new percent and resume after it, so that no call
		// ever sees the new percent on a gate that this config kills.
		if e.Killed && (!had || !prev.Killed) {
			reason := e.Reason
			if reason == "" {
				reason = "killed by config " + doc.version
			}
			changed = g.kill(KilledByConfig, reason)
		}
		if setPercent {
			g.setUnits(*e.Units, KilledByConfig)
			changed = true
		}
		if !e.Killed && had && prev.Killed {
			changed = g.resume(KilledByConfig, true) || changed
		}
		if changed {
			touched = append(touched, g)
		}
		next[e.Name] = e
	}
	r.applied = next
	r.info = ConfigInfo{
		Version: doc.version,
		Hash:    configHash(doc),
		Gates:   len(doc.entries),
		Applied: r.now(),
	}
	return r.info, touched, nil
}

// parseConfig decodes and checks a document without looking at the
// registry: malformed JSON, duplicates and percents.
func parseConfig(data []byte) (configDoc, error) {
	var raw struct {
		Version *string           `json:"version"`
		Gates   []json.RawMessage `json:"gates"`
	}
	if err := strictDecode(data, &raw); err != nil {
		return configDoc{}, &ConfigError{Index: -1, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	}
	if raw.Version == nil || *raw.Version == "" {
		return configDoc{}, &ConfigError{Index: -1, Err: fmt.Errorf("%w: missing \"version\"", ErrMalformed)}
	}
	if len(*raw.Version) > 256 {
		return configDoc{}, &ConfigError{Index: -1, Err: fmt.Errorf("%w: \"version\" longer than 256 bytes", ErrMalformed)}
	}
	doc := configDoc{version: *raw.Version, entries: make([]configEntry, 0, len(raw.Gates))}
	seen := make(map[string]bool, len(raw.Gates))
	for i, msg := range raw.Gates {
		var e struct {
			Name    *string  `json:"name"`
			Percent *float64 `json:"percent"`
			Killed  bool     `json:"killed"`
			Reason  string   `json:"reason"`
		}
		if err := strictDecode(msg, &e); err != nil {
			return configDoc{}, &ConfigError{Index: i, Entry: entryName(msg), Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
		}
		if e.Name == nil || *e.Name == "" {
			return configDoc{}, &ConfigError{Index: i, Err: fmt.Errorf("%w: missing \"name\"", ErrMalformed)}
		}
		name := *e.Name
		if !validName(name) {
			return configDoc{}, &ConfigError{Index: i, Entry: name, Err: fmt.Errorf("%w: a gate name is %s", ErrMalformed, nameRule)}
		}
		if seen[name] {
			return configDoc{}, &ConfigError{Index: i, Entry: name, Err: ErrDuplicate}
		}
		seen[name] = true
		if len(e.Reason) > maxReason {
			return configDoc{}, &ConfigError{Index: i, Entry: name, Err: fmt.Errorf("%w: \"reason\" longer than %d bytes", ErrMalformed, maxReason)}
		}
		ce := configEntry{Name: name, Killed: e.Killed, Reason: e.Reason}
		if e.Percent != nil {
			u, err := checkPercent(*e.Percent)
			if err != nil {
				return configDoc{}, &ConfigError{Index: i, Entry: name, Err: err}
			}
			ce.Units = &u
		}
		doc.entries = append(doc.entries, ce)
	}
	return doc, nil
}

// strictDecode decodes data, which must hold one JSON object and nothing
// else, into the struct v points to. It is stricter than encoding/json,
// which lets the last of repeated keys win and matches keys in any case:
// every key must be the JSON name of a field of v, spelled exactly, and
// appear once. So a document can never mean something other than it says.
func strictDecode(data []byte, v any) error {
	t := reflect.TypeOf(v).Elem()
	seen := make([]bool, t.NumField())
	err := scanObject(data, func(key string, _ json.RawMessage) error {
		for i := range seen {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name == key {
				if seen[i] {
					return fmt.Errorf("duplicate field %q", key)
				}
				seen[i] = true
				return nil
			}
		}
		return fmt.Errorf("unknown field %q (field names are case-sensitive)", key)
	})
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// scanObject checks that data is one JSON object followed by nothing but
// white space, and calls field with each key, unescaped, and its raw value,
// in order, stopping at the first error.
func scanObject(data []byte, field func(key string, value json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return err
		}
		if err := field(tok.(string), value); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the document")
	}
	return nil
}

// entryName returns the "name" of a config entry for an error message, if
// the entry has exactly one key "name" and it holds a string; otherwise "".
func entryName(msg json.RawMessage) string {
	var name string
	n := 0
	_ = scanObject(msg, func(key string, value json.RawMessage) error {
		if key == "name" {
			n++
			if json.Unmarshal(value, &name) != nil {
				n++
			}
		}
		return nil
	})
	if n != 1 {
		return ""
	}
	return name
}

// configHash is the SHA-256 of the canonical JSON encoding of doc: version
// and entries sorted by name, percents in units. encoding/json writes struct
// fields in order, so the encoding is stable.
func configHash(doc configDoc) string {
	entries := slices.Clone(doc.entries)
	slices.SortFunc(entries, func(a, b configEntry) int { return strings.Compare(a.Name, b.Name) })
	b, _ := json.Marshal(struct {
		Version string        `json:"version"`
		Gates   []configEntry `json:"gates"`
	}{doc.version, entries})
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

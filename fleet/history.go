package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

// MaxHistory is the number of entries a HistoryStore keeps in the history
// of a gate: the last MaxHistory.
const MaxHistory = 1024

// maxEntryBytes bounds a history entry read from a store: it is untrusted
// input.
const maxEntryBytes = 16 << 10

// Kinds of HistoryEntry besides rollout's event kinds (rollout.EventKill,
// EventResume, EventPercent, EventCreated, EventStep).
const (
	// EntryConfig is a config document's entry for the gate, published
	// through the store.
	EntryConfig = "config"
	// EntryVerdict is a fleet guard's trip, with its numbers; the kill it
	// publishes follows as an EventKill.
	EntryVerdict = "verdict"
)

// ErrNoHistory is wrapped by the error of a Publisher call that published
// its record but could not append the history entry of it: the publish
// took effect (the Published result is valid), its history lacks it.
var ErrNoHistory = errors.New("fleet: history entry not written")

// HistoryStore is a GuardStore that also keeps the fleet history of each
// gate: what was published for it through the store and the fleet guard's
// verdicts. MemoryStore implements it; so must a driver, for fleet's
// ReadHistory, ReadExposure and Handler's history routes.
//
// The contract, for drivers:
//
//   - AppendHistory appends entry, an opaque value of at most 16 KiB (JSON
//     written by this package), at the end of the history of gate name,
//     and drops the oldest entries beyond MaxHistory, in one atomic step
//     (in Redis: RPUSH then LTRIM -MaxHistory -1 in one MULTI or script).
//     Appends by concurrent writers are all kept, in the order the store
//     applies them. There is no deduplication: a retried append may appear
//     twice (readers tolerate it).
//   - History returns the retained entries of gate name, oldest first, as
//     appended (in Redis: LRANGE 0 -1); no history is an empty result and
//     a nil error.
//   - Both are per gate: the history of one gate never holds another's
//     entries. Gate names are rollout gate names (1 to 128 bytes of
//     [A-Za-z0-9._-]). Entries live as long as the store's data; a store
//     that loses its data loses the history too.
type HistoryStore interface {
	GuardStore
	// AppendHistory appends entry to the history of gate name, keeping the
	// last MaxHistory entries.
	AppendHistory(ctx context.Context, name string, entry []byte) error
	// History returns the history of gate name, oldest first.
	History(ctx context.Context, name string) ([][]byte, error)
}

// HistoryEntry is one change of a gate in the fleet's history: a publish
// through the store (kill, resume, percent, a config's entry for the
// gate), a fleet guard's verdict, or a change made on one instance alone
// (its creation, a schedule step, a kill through its own admin handler).
// The zero value is no entry.
type HistoryEntry struct {
	// At is when it happened: by the publisher's clock for a publish, by
	// the instance's for its own change.
	At time.Time `json:"at"`
	// Kind is rollout.EventKill, EventResume, EventPercent, EventCreated,
	// EventStep, EntryConfig or EntryVerdict.
	Kind string `json:"kind"`
	// Source is who made it: rollout.KilledByFleet for a publish, and the
	// rollout event's source for an instance's own change (KilledByCall,
	// KilledByGuard, rollout.SourceSchedule; empty for a creation).
	Source string `json:"source,omitempty"`
	// By is the publisher's actor (WithActor, "fleet-guard@ID" for the
	// fleet guard); Instance the id of the instance whose own change it
	// is, empty for what applies to the whole fleet.
	By       string `json:"by,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Version is the store version of a publish.
	Version uint64 `json:"version,omitempty"`
	// Reason is the reason of a kill, or a verdict's numbers.
	Reason string `json:"reason,omitempty"`
	// Percent is the percent set (EventPercent, EntryConfig with a
	// percent) or the instance's percent after its own change.
	Percent *float64 `json:"percent,omitempty"`
	// Killed is the kill state a config entry asks for, or the instance's
	// after its own change.
	Killed bool `json:"killed,omitempty"`
	// Counts are the pooled counts of a verdict, and Instances how many
	// instances they were pooled from.
	Counts    *rollout.Counts `json:"counts,omitempty"`
	Instances int             `json:"instances,omitempty"`
}

// History is the fleet history of a gate (ReadHistory). The zero value is
// an empty history.
type History struct {
	// Gate is the gate's name and Salt its salt, as the instances report
	// it (the gate's name if none does).
	Gate string `json:"gate"`
	Salt string `json:"salt"`
	// Partial reports that the store's history is full (MaxHistory entries
	// or more), so older entries may have been dropped.
	Partial bool `json:"partial,omitempty"`
	// Entries are oldest first.
	Entries []HistoryEntry `json:"entries"`
	// Unreadable counts entries that could not be decoded.
	Unreadable int `json:"unreadable,omitempty"`
}

// parseEntry decodes a history entry read from a store.
func parseEntry(data []byte) (HistoryEntry, error) {
	if len(data) > maxEntryBytes {
		return HistoryEntry{}, fmt.Errorf("%w: history entry of %d bytes, more than %d", ErrMalformed, len(data), maxEntryBytes)
	}
	var e HistoryEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return HistoryEntry{}, fmt.Errorf("%w: history entry: %v", ErrMalformed, err)
	}
	if e.Kind == "" || e.At.IsZero() {
		return HistoryEntry{}, fmt.Errorf("%w: history entry without a kind or a time", ErrMalformed)
	}
	if e.Percent != nil && (math.IsNaN(*e.Percent) || *e.Percent < 0 || *e.Percent > 100) {
		return HistoryEntry{}, fmt.Errorf("%w: history entry with percent %v", ErrMalformed, *e.Percent)
	}
	return e, nil
}

// appendHistory appends e to the history of gate name if store keeps one.
func appendHistory(ctx context.Context, store Store, name string, e HistoryEntry) error {
	hs, ok := store.(HistoryStore)
	if !ok {
		return nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoHistory, err)
	}
	if err := hs.AppendHistory(ctx, name, b); err != nil {
		return fmt.Errorf("%w: %w", ErrNoHistory, err)
	}
	return nil
}

// ReadHistory returns the fleet history of gate name: the store's history
// of it (publishes and fleet guard verdicts, Instance empty) merged with the
// changes of each instance (Instance set), as its fleet Guard reports them
// with its exposure data (its last 32 changes; see ReadExposure): its
// creation, schedule steps, kills through its own admin handler or guard,
// and the moment it applied each publish; sorted by time. It needs a
// HistoryStore.
func ReadHistory(ctx context.Context, store Store, name string) (History, error) {
	h, _, err := readHistory(ctx, store, name)
	return h, err
}

// ErrNoHistoryStore is returned by ReadHistory and ReadExposure for a
// store that is no HistoryStore.
var ErrNoHistoryStore = errors.New("fleet: the store keeps no history")

func readHistory(ctx context.Context, store Store, name string) (History, exposures, error) {
	hs, ok := store.(HistoryStore)
	if !ok {
		return History{}, exposures{}, fmt.Errorf("%w: gate %q", ErrNoHistoryStore, name)
	}
	raw, err := hs.History(ctx, name)
	if err != nil {
		return History{}, exposures{}, fmt.Errorf("fleet: read history of %q: %w", name, err)
	}
	exp, err := readExposures(ctx, hs, name)
	if err != nil {
		return History{}, exposures{}, err
	}
	h := History{Gate: name, Salt: name, Partial: len(raw) >= MaxHistory, Entries: make([]HistoryEntry, 0, len(raw))}
	for _, b := range raw {
		e, err := parseEntry(b)
		if err != nil {
			h.Unreadable++
			continue
		}
		h.Entries = append(h.Entries, e)
	}
	for _, x := range exp.records {
		h.Salt = cmp.Or(x.Salt, h.Salt)
		for _, w := range x.Windows {
			ev := w.Event
			p := ev.Percent
			h.Entries = append(h.Entries, HistoryEntry{At: ev.At, Kind: ev.Kind, Source: ev.Source, Instance: x.Instance,
				Reason: ev.Reason, Percent: &p, Killed: ev.Killed})
		}
	}
	h.Unreadable += exp.unreadable
	slices.SortStableFunc(h.Entries, func(a, b HistoryEntry) int { return a.At.Compare(b.At) })
	return h, exp, nil
}

// WasEnabled reports whether, by the history, some instance of the fleet
// routed key to the new path at the moment at: whether the gate was live
// there at a percent above key's bucket (rollout.Bucket with h.Salt). It
// asks WasEnabledOn of every instance the history names, and of an
// instance that reports nothing (the publishes alone).
//
// Use it when it is not known which instance served the key; it then
// names every key that may have gone through the new path: while a kill
// spreads, an instance that has not applied it yet keeps the answer true.
// When the instance is known (the service logged it beside the key), use
// WasEnabledOn, which is exact for that instance.
//
// Limits: it knows what the history retains (Partial), and a percent only
// from an entry that sets one (a publish, a config entry, or an instance's
// creation or step that its Guard reported); before the first such entry it
// answers false.
func (h History) WasEnabled(key string, at time.Time) bool {
	if h.WasEnabledOn("", key, at) {
		return true
	}
	seen := map[string]bool{}
	for _, e := range h.Entries {
		if e.Instance == "" || seen[e.Instance] {
			continue
		}
		seen[e.Instance] = true
		if h.WasEnabledOn(e.Instance, key, at) {
			return true
		}
	}
	return false
}

// WasEnabledOn reports whether, by the history, instance routed key to the
// new path at the moment at. instance is an instance id as the history
// names it (HistoryEntry.Instance: the id its fleet Guard reports under);
// "" asks about an instance that reports nothing.
//
// It replays the instance's own changes, as its Guard reports them (its
// creation, schedule steps, local kills, and the moment it applied each
// publish), and the publishes that they do not cover: a publish applies
// at its recorded time unless the instance reported a change after it
// without restarting in between (a creation), for then its own entries
// say when it took effect there. A config entry applies as
// Registry.LoadConfig applies it (only what differs from the previous
// config; a config's resume lifts only a config's kill). Before the
// instance's creation, if the history retains it, the answer is false.
//
// The answer is exact, within the instance's own clock, for an instance
// whose Guard reported its changes up to at, even for a key served while
// a kill spreads through the fleet; for an instance that reports nothing,
// the publishes stand in, at their recorded times.
func (h History) WasEnabledOn(instance, key string, at time.Time) bool {
	var own []int // the instance's own entries
	if instance != "" {
		for i, e := range h.Entries {
			if e.Instance == instance {
				own = append(own, i)
			}
		}
	}
	if len(own) > 0 && h.Entries[own[0]].Kind == rollout.EventCreated && at.Before(h.Entries[own[0]].At) {
		return false
	}
	var s gateState
	n := sort.Search(len(h.Entries), func(i int) bool { return h.Entries[i].At.After(at) })
	k := 0 // own[k] is the instance's next entry
	for i, e := range h.Entries[:n] {
		for k < len(own) && own[k] < i {
			k++
		}
		switch {
		case e.Instance == "" && k > 0 && k < len(own) && h.Entries[own[k]].Kind != rollout.EventCreated:
			// Between two of its reports: its next says whether and
			// when it applied the publish. A config is remembered for
			// the differences of the next.
			s.remember(e)
		case e.Instance == "":
			s.publish(e)
		case e.Instance == instance:
			s.change(e)
		}
	}
	return s.live() && rollout.Bucket(h.Salt, key) < s.units
}

// gateState is one instance's state of the gate in a replay.
type gateState struct {
	known    bool // a percent is known
	units    uint32
	killed   bool
	byConfig bool // killed by a config
	cfg      *HistoryEntry
}

func (s *gateState) live() bool { return s.known && !s.killed && s.units > 0 }

// replayed is the state of every instance in a replay; "" is the state of
// an instance that made no change of its own.
type replayed struct {
	states map[string]*gateState
}

func units(p float64) uint32 { return uint32(min(max(math.Round(p*1e4), 0), rollout.Buckets)) }

// apply replays one entry.
func (r *replayed) apply(e HistoryEntry) {
	if r.states == nil {
		r.states = map[string]*gateState{"": {}}
	}
	if e.Instance != "" {
		s, ok := r.states[e.Instance]
		if !ok {
			c := *r.states[""]
			s = &c
			r.states[e.Instance] = s
		}
		s.change(e)
		return
	}
	for _, s := range r.states {
		s.publish(e)
	}
}

// change applies an instance's own change, which carries its state after
// it.
func (s *gateState) change(e HistoryEntry) {
	if e.Percent != nil {
		s.known, s.units = true, units(*e.Percent)
	}
	if s.killed != e.Killed {
		s.killed, s.byConfig = e.Killed, false
	}
}

// publish applies a publish to the whole fleet.
func (s *gateState) publish(e HistoryEntry) {
	switch e.Kind {
	case rollout.EventKill:
		if !s.killed {
			s.killed, s.byConfig = true, false
		}
	case rollout.EventResume:
		s.killed, s.byConfig = false, false
	case rollout.EventPercent:
		if e.Percent != nil {
			s.known, s.units = true, units(*e.Percent)
		}
	case EntryConfig:
		prev := s.cfg
		if e.Killed && (prev == nil || !prev.Killed) && !s.killed {
			s.killed, s.byConfig = true, true
		}
		if e.Percent != nil && (prev == nil || prev.Percent == nil || *prev.Percent != *e.Percent) {
			s.known, s.units = true, units(*e.Percent)
		}
		if !e.Killed && prev != nil && prev.Killed && s.byConfig {
			s.killed, s.byConfig = false, false
		}
		s.remember(e)
	}
}

// remember keeps a config entry, against which the next one applies only
// what differs.
func (s *gateState) remember(e HistoryEntry) {
	if e.Kind == EntryConfig {
		c := e
		s.cfg = &c
	}
}

// summary is the fleet's state after an entry, as a window reports it:
// the highest percent of a live instance, or of any instance if none is
// live.
func (r *replayed) summary() (percent float64, killed, live bool) {
	var best, any uint32
	killed = len(r.states) > 0
	for _, s := range r.states {
		killed = killed && s.killed
		if !s.known {
			continue
		}
		any = max(any, s.units)
		if s.live() {
			live = true
			best = max(best, s.units)
		}
	}
	if !live {
		best = any
	}
	return float64(best) / 1e4, killed, live
}

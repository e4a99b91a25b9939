package compat

import (
	"context"
	"log/slog"
	"reflect"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/blastradius/blastradius/internal/telemetry"
	"github.com/blastradius/blastradius/logbudget"
)

// Version is one version of a format that is still in circulation. The
// zero Version is not valid: New requires a Name and a Decode.
type Version[T any] struct {
	// Name identifies the version in Results, errors, metrics and logs. It
	// must be non-empty and unique within a Decoder.
	Name string
	// Match, if set, reports whether data looks like this version. Versions
	// with a Match are tried only when it returns true, and before the
	// versions without one. It must be cheap and must not modify or retain
	// data. A panic in Match or Decode is recovered (see Decoder.Decode).
	Match func(data []byte) bool
	// Decode parses data into the current type T; use Then to compose a
	// decoder for an older type with upgrade steps. It is required. Called
	// through Decoder.Decode, it must not modify data, nor retain it or any
	// sub-slice of it after it returns: data is the caller's. Called through
	// Verify, data is a fresh copy of the token (see Verify).
	Decode func(data []byte) (T, error)
	// Sunset, if not zero, is when this version is retired. From then on a
	// decode by this version is reported as past its sunset, and refused if
	// the decoder was built WithRejectAfterSunset.
	Sunset time.Time
}

// Result describes how Decode decoded its input. The zero Result is that of
// an input no version decoded.
type Result struct {
	// Version is the name of the version that decoded the input. On failure
	// it is empty, unless a version decoded the input but was refused
	// because it is past its sunset: then it names that version.
	Version string
	// Fallback is true when the version that decoded the input was not
	// positively identified first: either it has no Match (so it was tried
	// after every matching version), or an earlier candidate was tried and
	// failed. A decode by the first candidate, claimed by its Match, is not
	// a fallback.
	Fallback bool
	// PastSunset is true when Version has a Sunset and the clock was at or
	// after it.
	PastSunset bool
}

// Result values of the compat.decodes metric, indexed by outcome.
const (
	resOK = iota
	resFallback
	resPastSunset
	resPanic // counts attempts, besides the outcome of the call
	numVersionResults
)

var resultNames = [numVersionResults]string{"ok", "fallback", "past_sunset", "panic"}

type version[T any] struct {
	Version[T]
	hasSunset bool
	// logAttrs are the attributes of the version's log records (decoder,
	// version, and the "reason" that keys their budget); sunsetKey and
	// panicKey are its two records, resolved once against the budget.
	logAttrs            []slog.Attr
	sunsetKey, panicKey *logbudget.Key
	// counts is the index of the version's first count in Decoder.counts:
	// counts+r counts result r.
	counts   int
	lastSeen atomic.Int64 // unix nanoseconds; only for versions with a Sunset
}

// Decoder decodes every registered version of a format into T. It is safe
// for concurrent use. The zero value is not usable: use New.
type Decoder[T any] struct {
	name    string
	maxSize int
	reject  bool
	now     func() time.Time
	budget  *logbudget.Handler

	all []*version[T] // in the order given
	// order lists the candidates in the order Decode tries them: first the
	// versions with a Match, then the others, each in the order given.
	order    []*version[T]
	nMatched int // order[:nMatched] have a Match

	// counts holds the compat.decodes counts: numVersionResults per version,
	// in the order given, then unrecognized and too_large.
	counts                 *telemetry.Counts
	unrecognized, tooLarge int // indexes in counts
}

// New returns a Decoder for versions, which are tried as Decode describes.
// It returns an error wrapping ErrInvalidConfig if there are no versions, a
// version has an empty or duplicate name or a nil Decode, or an option is
// invalid.
//
// A Decoder registers a metric callback that lives as long as its meter
// provider: build decoders once, at start-up, not per request. Decoders that
// share a name add up in the metric.
func New[T any](versions []Version[T], opts ...Option) (*Decoder[T], error) {
	c := config{maxSize: DefaultMaxSize}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&c); err != nil {
			return nil, err
		}
	}
	if len(versions) == 0 {
		return nil, invalid("no versions")
	}
	seen := make(map[string]bool, len(versions))
	for i, v := range versions {
		switch {
		case v.Name == "":
			return nil, invalid("versions[%d]: empty Name", i)
		case seen[v.Name]:
			return nil, invalid("versions[%d]: duplicate Name %q", i, v.Name)
		case v.Decode == nil:
			return nil, invalid("versions[%d] (%q): nil Decode", i, v.Name)
		}
		seen[v.Name] = true
	}

	if c.name == "" {
		c.name = reflect.TypeFor[T]().String()
	}
	if c.now == nil {
		c.now = time.Now
	}
	// The options are valid, so For cannot fail.
	budget, _ := logbudget.For(c.logger, logbudget.WithKeyAttr(attrReason), logbudget.WithMeterProvider(c.mp))
	d := &Decoder[T]{
		name:    c.name,
		maxSize: c.maxSize,
		reject:  c.reject,
		now:     c.now,
		budget:  budget,
	}
	dec := attribute.String(attrDecoder, d.name)
	var sets [][]attribute.KeyValue
	for _, v := range versions {
		iv := &version[T]{Version: v, hasSunset: !v.Sunset.IsZero(), counts: len(sets)}
		iv.logAttrs = []slog.Attr{slog.String(attrDecoder, d.name), slog.String(attrVersion, v.Name),
			slog.String(attrReason, d.name+"/"+v.Name)}
		iv.sunsetKey = budget.Key(msgPastSunset, iv.logAttrs...)
		iv.panicKey = budget.Key(msgPanicked, iv.logAttrs...)
		for _, r := range resultNames {
			sets = append(sets, []attribute.KeyValue{dec, attribute.String(attrVersion, v.Name), attribute.String(attrResult, r)})
		}
		d.all = append(d.all, iv)
		if v.Match != nil {
			d.order = append(d.order, iv)
		}
	}
	d.nMatched = len(d.order)
	for _, iv := range d.all {
		if iv.Match == nil {
			d.order = append(d.order, iv)
		}
	}
	d.unrecognized, d.tooLarge = len(sets), len(sets)+1
	sets = append(sets,
		[]attribute.KeyValue{dec, attribute.String(attrVersion, ""), attribute.String(attrResult, "unrecognized")},
		[]attribute.KeyValue{dec, attribute.String(attrVersion, ""), attribute.String(attrResult, "too_large")})
	d.counts = telemetry.NewCounts(telemetry.Meter(c.mp, "compat"), metricDecodes,
		"Inputs decoded, by decoder, version and result (panic: a version's Match or Decode panicked).", "{decode}", sets...)
	return d, nil
}

// count adds one to count i of d.counts.
func (d *Decoder[T]) count(i int) { d.counts.Add(i, 1) }

// The metric, its attribute keys (also those of log records), and the log
// messages.
const (
	metricDecodes = "blastradius.compat.decodes"
	attrDecoder   = "compat.decoder"
	attrVersion   = "compat.version"
	attrResult    = "result"
	attrReason    = "reason" // the log budget key: "<decoder>/<version>"
	msgPastSunset = "compat: version past sunset accepted"
	msgPanicked   = "compat: version panicked"
)

// Decode decodes data with the first version that accepts it.
//
// Input longer than the size cap (WithMaxSize) is refused with an error
// matching ErrTooLarge before anything else runs. Then the versions with a
// Match are considered in the order given; each whose Match returns true is
// tried. A version whose Match returns false is never tried. Then the
// versions without a Match are tried, in the order given. The first Decode
// that succeeds wins, unless its version is past its sunset on a decoder
// built WithRejectAfterSunset: then that attempt fails with ErrSunset and
// the next candidate is tried.
//
// On failure Decode returns an *Error that matches ErrUnrecognized and lists
// each attempt. Decoding is CPU work: ctx is passed to the logger, and
// Decode checks it between attempts (not before the first one); if it is
// done, Decode stops with an *Error whose Cause is ctx.Err().
//
// A panic in a version's Match or Decode is recovered: that attempt fails
// with a *PanicError (matching ErrPanic) and the next candidate is tried. The
// panic is counted for its version (VersionStats.Panics, result panic of the
// metric) and logged at Error with its stack, within the log budget.
//
// Every call is counted, per version and result, in Stats and in the
// blastradius.compat.decodes metric (an asynchronous counter read from the
// same atomic counters when the SDK collects): as ok, fallback or
// past_sunset for the version that decoded it (a refusal past the sunset
// counts as past_sunset, not unrecognized), or as unrecognized or
// too_large. A panic is counted per attempt, as panic for its version, in
// addition to the call's outcome.
//
// A successful decode by a version without a Sunset allocates nothing
// beyond what its Decode allocates.
func (d *Decoder[T]) Decode(ctx context.Context, data []byte) (T, Result, error) {
	var zero T
	if len(data) > d.maxSize {
		d.count(d.tooLarge)
		return zero, Result{}, &Error{Decoder: d.name, Size: len(data), Limit: d.maxSize, tooLarge: true}
	}
	var (
		failed  attempts
		refused *version[T] // the first version refused past its sunset
		cause   error       // ctx.Err(), if that stopped the decode
	)
	for i, v := range d.order {
		matched := i < d.nMatched
		if matched {
			ok, err := d.match(ctx, v, data)
			if err != nil {
				failed.add(Attempt{Version: v.Name, Err: err})
			}
			if !ok {
				continue
			}
		}
		if failed.n > 0 {
			if cause = ctx.Err(); cause != nil {
				break
			}
		}
		out, err := d.decode(ctx, v, data)
		if err != nil {
			failed.add(Attempt{Version: v.Name, Err: err})
			continue
		}
		past := false
		if v.hasSunset {
			now := d.now()
			v.lastSeen.Store(now.UnixNano())
			past = !now.Before(v.Sunset)
		}
		if past && d.reject {
			if refused == nil {
				refused = v
			}
			d.count(v.counts + resPastSunset)
			failed.add(Attempt{Version: v.Name, Err: ErrSunset})
			continue
		}
		res := Result{Version: v.Name, Fallback: !matched || failed.n > 0, PastSunset: past}
		r := resOK
		switch {
		case past:
			r = resPastSunset
			d.logPastSunset(ctx, v)
		case res.Fallback:
			r = resFallback
		}
		d.count(v.counts + r)
		return out, res, nil
	}

	e := &Error{Decoder: d.name, Size: len(data), Cause: cause, Attempts: failed.list()}
	if refused != nil {
		// Counted as past_sunset when it was refused.
		return zero, Result{Version: refused.Name, PastSunset: true}, e
	}
	d.count(d.unrecognized)
	return zero, Result{}, e
}

// attempts collects the failed attempts of one Decode call: the first few
// in buf, which stays on Decode's stack, the rest in more.
type attempts struct {
	n    int
	buf  [4]Attempt
	more []Attempt
}

func (a *attempts) add(at Attempt) {
	if a.n < len(a.buf) {
		a.buf[a.n] = at
	} else {
		a.more = append(a.more, at)
	}
	a.n++
}

// list returns a copy of the attempts, or nil if there were none.
func (a *attempts) list() []Attempt {
	if a.n == 0 {
		return nil
	}
	l := make([]Attempt, 0, a.n)
	l = append(l, a.buf[:min(a.n, len(a.buf))]...)
	return append(l, a.more...)
}

// match calls v.Match, recovering a panic into the error it returns.
func (d *Decoder[T]) match(ctx context.Context, v *version[T], data []byte) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = d.panicked(ctx, v, "Match", r)
		}
	}()
	return v.Match(data), nil
}

// decode calls v.Decode, recovering a panic into the error it returns.
func (d *Decoder[T]) decode(ctx context.Context, v *version[T], data []byte) (out T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = d.panicked(ctx, v, "Decode", r)
		}
	}()
	return v.Decode(data)
}

// panicked counts and logs a recovered panic. It runs in the deferred
// recover, while the panicking frames are still on the stack, and captures
// the stack only for a record the log budget passes: a flood of panics
// costs a fraction of a valid token's decode, where capturing every stack
// would cost over ten times as much (BenchmarkVerifyBad).
func (d *Decoder[T]) panicked(ctx context.Context, v *version[T], fn string, r any) error {
	d.count(v.counts + resPanic)
	d.log(ctx, v, v.panicKey, slog.LevelError, msgPanicked, func(rec *slog.Record) {
		rec.AddAttrs(slog.String("func", fn), slog.Any("panic", r), slog.String("stack", panicStack()))
	})
	return &PanicError{Version: v.Name, Func: fn, Value: r}
}

// panicStack returns the current goroutine's stack from the panic on,
// without the frames of the recovery and logging.
func panicStack() string {
	st := string(debug.Stack())
	if i := strings.Index(st, "\npanic("); i >= 0 {
		if j := strings.IndexByte(st, '\n'); j >= 0 && j < i {
			st = st[:j] + st[i:]
		}
	}
	return st
}

func (d *Decoder[T]) logPastSunset(ctx context.Context, v *version[T]) {
	d.log(ctx, v, v.sunsetKey, slog.LevelWarn, msgPastSunset, func(rec *slog.Record) {
		rec.AddAttrs(slog.Time("sunset", v.Sunset))
	})
}

// log hands the budget a record of v with message msg, whose key is k: v's
// attributes, then those add puts after them. The record is built only if
// the budget passes it.
func (d *Decoder[T]) log(ctx context.Context, v *version[T], k *logbudget.Key, level slog.Level, msg string, add func(*slog.Record)) {
	_ = d.budget.HandleKey(ctx, k, level, func() slog.Record {
		rec := slog.NewRecord(time.Now(), level, msg, 0)
		rec.AddAttrs(v.logAttrs...)
		add(&rec)
		return rec
	})
}

// Verify decodes token, with the signature edge.Auth expects of a verifier:
// edge.Auth(dec.Verify). Errors are Decode's.
//
// Verify copies the token into a new slice on every call and hands that to
// the versions: a token is usually a request header's memory, or a string
// constant in read-only memory, and a Match or Decode that writes into its
// input (decoding or lowercasing in place) must not reach it. The copy is
// not pooled, so a T that retains the slice keeps it valid. It costs one
// allocation of the token's length; a verifier that checks a signature
// costs far more.
func (d *Decoder[T]) Verify(ctx context.Context, token string) (T, error) {
	v, _, err := d.Decode(ctx, []byte(token))
	return v, err
}

// Name returns the decoder's name (see WithName).
func (d *Decoder[T]) Name() string { return d.name }

// VersionStats counts one version's decodes since New. The counts mirror
// the blastradius.compat.decodes metric. The zero value counts nothing.
type VersionStats struct {
	// Name is the version's name.
	Name string
	// OK counts decodes that were neither fallbacks nor past the sunset.
	OK uint64
	// Fallback counts decodes that were fallbacks (see Result.Fallback) and
	// not past the sunset.
	Fallback uint64
	// PastSunset counts decodes at or after the version's sunset: accepted,
	// or refused if the decoder was built WithRejectAfterSunset.
	PastSunset uint64
	// Panics counts calls of the version's Match or Decode that panicked.
	// Each was recovered into a *PanicError and the next candidate tried;
	// they are not part of Total.
	Panics uint64
	// LastSeen is when this version last decoded an input. It is tracked
	// only for versions with a Sunset (whose decodes read the clock anyway)
	// and is zero otherwise, or if there has been no decode.
	LastSeen time.Time
}

// Total is the number of inputs this version decoded.
func (s VersionStats) Total() uint64 { return s.OK + s.Fallback + s.PastSunset }

// Stats is a snapshot of a decoder's counts since New, readable without
// OpenTelemetry: watch a version's Total and LastSeen to know when its last
// input died and its parser can be retired. The zero value counts nothing.
type Stats struct {
	// Versions has one entry per version, in the order given to New.
	Versions []VersionStats
	// Unrecognized counts inputs that no version accepted.
	Unrecognized uint64
	// TooLarge counts inputs over the size cap.
	TooLarge uint64
}

// Stats returns a snapshot of the decoder's counts. The counts are read one
// at a time, not as one atomic snapshot.
func (d *Decoder[T]) Stats() Stats {
	load := func(i int) uint64 { return uint64(d.counts.Load(i)) }
	s := Stats{
		Versions:     make([]VersionStats, len(d.all)),
		Unrecognized: load(d.unrecognized),
		TooLarge:     load(d.tooLarge),
	}
	for i, v := range d.all {
		vs := VersionStats{
			Name:       v.Name,
			OK:         load(v.counts + resOK),
			Fallback:   load(v.counts + resFallback),
			PastSunset: load(v.counts + resPastSunset),
			Panics:     load(v.counts + resPanic),
		}
		if ns := v.lastSeen.Load(); ns != 0 {
			vs.LastSeen = time.Unix(0, ns)
		}
		s.Versions[i] = vs
	}
	return s
}

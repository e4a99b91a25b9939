package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/blastradius/blastradius/internal/telemetry"
)

// Arms are the two code paths of a Path, and how to call and judge them:
// each arm takes the call's input, of type In, and returns a result of type
// Out. NewPath checks them. Old and New are required; the zero value of
// every other field is its default. Fields marked Run or Shadow only apply
// to that method.
type Arms[In, Out any] struct {
	// Old is the code path in production. Run calls it for the keys the
	// gate does not enable; Shadow calls it for every key and returns its
	// result.
	Old func(context.Context, In) (Out, error)
	// New is the code path being rolled out. Run calls it for the keys the
	// gate enables; Shadow calls it for those keys too, after Old, and
	// compares the results.
	New func(context.Context, In) (Out, error)
	// Validate, if set, checks every result an arm returns with a nil
	// error. A non-nil error makes the outcome "invalid", a failure of the
	// arm: Run returns an error wrapping ErrInvalidResult and the Validate
	// error; Shadow counts it but serves Old's result unchanged.
	Validate func(Out) error
	// Timeout bounds each arm with a deadline of its own: each arm that Run
	// calls, and the new arm of Shadow. Zero means none for Run and 1s for
	// Shadow, whose new arm does not inherit the caller's cancellation. An
	// error that matches context.DeadlineExceeded once that deadline has
	// passed, while the caller's context is live, is the outcome "timeout".
	// The arm must honor its context: Run and a synchronous Shadow wait for
	// it to return. A deadline allocates (context.WithTimeout), so Run
	// pays for it only when Timeout is set.
	Timeout time.Duration
	// Fallback makes Run answer a failure of New (error, panic, invalid or
	// timeout) with a call of Old, whose result it returns. The failure
	// still counts against New. Run only.
	Fallback bool
	// Equal compares the results of Old and New when both succeeded. Nil
	// means reflect.DeepEqual. An Equal that panics counts a mismatch.
	// Shadow only.
	Equal func(a, b Out) bool
	// Redact, if set, replaces each result in the log of a mismatch, for
	// results that hold personal data. Shadow only.
	Redact func(Out) any
	// Async makes Shadow call New on a goroutine of its own after Old
	// returned, so the caller does not wait for it. The goroutine ends when
	// New returns, which a New that honors its context does by the
	// timeout. Shadow only.
	Async bool
	// MaxConcurrent caps the calls of New that Shadow has in flight on this
	// Path. Zero means 32. Past the cap New is skipped, and the skip is
	// counted in blastradius.rollout.shadow.skipped. A slot is held until
	// New returns, so a New that ignores its context uses up slots rather
	// than piling up goroutines. Shadow only.
	MaxConcurrent int
}

// Messages a Path logs per call, through the gate's log budget.
const (
	msgPanic    = "rollout: arm panicked"
	msgMismatch = "rollout: shadow mismatch"
)

// Defaults of Shadow.
const (
	defaultShadowTimeout    = time.Second
	defaultShadowConcurrent = 32
)

// Path is a call with two code paths behind a gate. Run serves each call
// from the arm the gate routes its key to; Shadow serves Old and compares
// New with it. Both record every arm's outcome in blastradius.rollout.calls
// and feed the gate's guard. Build a Path once, with NewPath, and call it
// from any goroutine. The zero value is not usable: use NewPath.
type Path[In, Out any] struct {
	g             *Gate
	arms          Arms[In, Out]
	shadowTimeout time.Duration
	maxConcurrent int64
	inFlight      atomic.Int64 // Shadow's calls of New in flight
}

// NewPath returns the Path of arms behind gate g. It returns an error
// wrapping ErrInvalidConfig, naming the field and its value, if g, Old or
// New is nil, or Timeout or MaxConcurrent is negative.
func NewPath[In, Out any](g *Gate, arms Arms[In, Out]) (*Path[In, Out], error) {
	switch {
	case g == nil:
		return nil, invalid("NewPath: nil gate")
	case arms.Old == nil:
		return nil, invalid("Arms.Old: nil; a Path needs both arms")
	case arms.New == nil:
		return nil, invalid("Arms.New: nil; a Path needs both arms")
	case arms.Timeout < 0:
		return nil, invalid("Arms.Timeout = %v: must not be negative", arms.Timeout)
	case arms.MaxConcurrent < 0:
		return nil, invalid("Arms.MaxConcurrent = %d: must not be negative", arms.MaxConcurrent)
	}
	p := &Path[In, Out]{g: g, arms: arms, shadowTimeout: arms.Timeout, maxConcurrent: int64(arms.MaxConcurrent)}
	if p.shadowTimeout == 0 {
		p.shadowTimeout = defaultShadowTimeout
	}
	if p.maxConcurrent == 0 {
		p.maxConcurrent = defaultShadowConcurrent
	}
	return p, nil
}

// Run routes key through the gate, to New if the gate enables it and
// otherwise to Old, calls that arm with in and returns its result. It records the arm's
// outcome (ok, error, panic, invalid or timeout) and feeds the gate's guard.
// A panic is recovered and returned as a *PanicError, which wraps ErrPanic.
// With Fallback, a failure of New is followed by a call of Old, whose result
// Run returns.
//
// Without Timeout, Run reads no clock, takes no lock and allocates nothing:
// its cost over calling the arm is Enabled, one atomic add and a look at
// ctx's span, plus one add on calls of New when the gate has a guard. A
// failure of New also reads the clock and takes a lock once, to keep the
// key among the samples of Gate.Exposure. Only a recording span costs
// more: the events of the call (see Traces in the package doc).
func (p *Path[In, Out]) Run(ctx context.Context, key string, in In) (Out, error) {
	g := p.g
	span := telemetry.Recording(ctx)
	on := g.Enabled(key)
	if on {
		v, o, err := p.call(ctx, armNew, p.arms.New, in, p.arms.Validate, p.arms.Timeout)
		g.record(armNew, o, false, 1)
		if span != nil {
			g.traceRun(span, armNew, false, o)
		}
		if o == outOK {
			return v, err
		}
		g.failed(key, o, false)
		if !p.arms.Fallback {
			return v, err
		}
	}
	v, o, err := p.call(ctx, armOld, p.arms.Old, in, p.arms.Validate, p.arms.Timeout)
	g.record(armOld, o, false, 1)
	if span != nil {
		g.traceRun(span, armOld, on, o)
	}
	return v, err
}

// Shadow calls Old with in and returns its result, always. For keys the
// gate enables it also calls New with in (after Old: on the caller's goroutine, or on its
// own with Async) and compares the two results: that is how a new code path
// meets real traffic before it serves any.
//
// New runs with panic isolation, under its own timeout (Timeout, default
// 1s; its context does not inherit the caller's cancellation) and under the
// cap MaxConcurrent (default 32) on this Path's calls of New in flight;
// past the cap it is skipped, and the skip is counted in
// blastradius.rollout.shadow.skipped. When both arms succeed and Equal
// (default reflect.DeepEqual) finds the results unequal, the mismatch is
// counted in blastradius.rollout.mismatches, fed to the gate's guard as a
// failure of New, and logged through the gate's log budget with both
// results (Redact replaces them). When either arm fails, nothing is
// compared: a failure of New counts by its outcome.
//
// Validate judges both arms for the counts (an invalid result of New is a
// failure, and is not compared) but never changes what Shadow returns: Old's
// result is served as it is. Old runs with panic isolation too: its panic
// becomes a *PanicError that Shadow returns, as Run does. Shadow allocates
// only when it calls New, or records on a recording span.
func (p *Path[In, Out]) Shadow(ctx context.Context, key string, in In) (Out, error) {
	g := p.g
	v, o, err := p.call(ctx, armOld, p.arms.Old, in, nil, 0)
	if o == outOK && p.arms.Validate != nil && !valid(p.arms.Validate, v) {
		o = outInvalid // counted as such, but served as it is
	}
	g.record(armOld, o, false, 1)
	on := g.Enabled(key)
	span := telemetry.Recording(ctx)
	if span != nil {
		g.traceEvaluation(span, modeShadow, armOf(on), o)
	}
	if !on {
		return v, err
	}
	if p.inFlight.Add(1) > p.maxConcurrent {
		p.inFlight.Add(-1)
		g.stats.skipped.Add(0, 1)
		if span != nil {
			g.traceSkipped(span)
		}
		return v, err
	}
	if p.arms.Async {
		go p.shadow(context.WithoutCancel(ctx), key, in, v, o == outOK)
	} else {
		p.shadow(context.WithoutCancel(ctx), key, in, v, o == outOK)
	}
	return v, err
}

// shadow calls New, compares its result with old's and records. It holds a
// concurrency slot, which it releases when New has returned.
func (p *Path[In, Out]) shadow(ctx context.Context, key string, in In, old Out, oldOK bool) {
	g := p.g
	defer p.inFlight.Add(-1)
	v, o, _ := p.call(ctx, armNew, p.arms.New, in, p.arms.Validate, p.shadowTimeout)
	mismatch := o == outOK && oldOK && !p.same(old, v)
	g.record(armNew, o, mismatch, 1)
	if span := telemetry.Recording(ctx); span != nil {
		g.traceShadow(span, o, mismatch)
	}
	if o != outOK || mismatch {
		g.failed(key, o, mismatch)
	}
	if mismatch {
		_ = g.budget.HandleKey(ctx, g.mismatchKey, slog.LevelWarn, func() slog.Record {
			r := slog.NewRecord(time.Now(), slog.LevelWarn, msgMismatch, 0)
			r.AddAttrs(slog.String(attrKey, g.name), slog.String("key", key),
				slog.Any("old", p.redact(old)), slog.Any("new", p.redact(v)))
			return r
		})
	}
}

// call calls f with panic isolation, an optional timeout and an optional
// validation, and classifies the outcome.
func (p *Path[In, Out]) call(ctx context.Context, a arm, f func(context.Context, In) (Out, error), in In, validate func(Out) error, timeout time.Duration) (v Out, o outcome, err error) {
	if timeout > 0 {
		tctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		v, o, err = p.call(tctx, a, f, in, validate, 0)
		if o == outError && tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil &&
			errors.Is(err, context.DeadlineExceeded) {
			o = outTimeout
		}
		return v, o, err
	}
	defer func() {
		if r := recover(); r != nil {
			var zero Out
			pe := &PanicError{Variant: variantNames[a], Value: r, Stack: debug.Stack()}
			v, o, err = zero, outPanic, pe
			g := p.g
			_ = g.budget.HandleKey(ctx, g.panicKey, slog.LevelError, func() slog.Record {
				rec := slog.NewRecord(time.Now(), slog.LevelError, msgPanic, 0)
				rec.AddAttrs(slog.String(attrKey, g.name), slog.String(attrVariant, pe.Variant),
					slog.String("panic", fmt.Sprint(pe.Value)), slog.String("stack", string(pe.Stack)))
				return rec
			})
		}
	}()
	v, err = f(ctx, in)
	if err != nil {
		return v, outError, err
	}
	if validate != nil {
		if verr := validate(v); verr != nil {
			var zero Out
			return zero, outInvalid, fmt.Errorf("%w from %s arm: %w", ErrInvalidResult, variantNames[a], verr)
		}
	}
	return v, outOK, nil
}

// valid reports whether validate accepts v; a validate that panics does not.
func valid[T any](validate func(T) error, v T) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return validate(v) == nil
}

// same compares the results; an Equal that panics counts as a mismatch.
func (p *Path[In, Out]) same(old, v Out) (eq bool) {
	defer func() {
		if r := recover(); r != nil {
			eq = false
			p.g.noisy.Error("rollout: shadow Equal panicked", attrKey, p.g.name, "panic", fmt.Sprint(r))
		}
	}()
	if p.arms.Equal != nil {
		return p.arms.Equal(old, v)
	}
	return reflect.DeepEqual(old, v)
}

// redact returns what the mismatch log shows of v: v, or Redact(v). A Redact
// that panics shows nothing of v.
func (p *Path[In, Out]) redact(v Out) (shown any) {
	if p.arms.Redact == nil {
		return v
	}
	defer func() {
		if r := recover(); r != nil {
			shown = fmt.Sprintf("(Redact panicked: %v)", r)
		}
	}()
	return p.arms.Redact(v)
}

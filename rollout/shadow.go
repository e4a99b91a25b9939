package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"
)

// Shadow calls old and returns its result, always. For keys the gate
// enables, it also calls new (after old, on the caller's goroutine, or on
// its own goroutine with WithAsync) and compares the two results: that is
// how a new code path meets real traffic before it serves any.
//
// The new arm runs with panic isolation, under its own timeout (WithTimeout,
// default 1s; its context does not inherit the caller's cancellation) and
// under a cap on the gate's shadow calls in flight (WithMaxConcurrent,
// default 32); past the cap it is skipped, and the skip is counted in
// blastradius.rollout.shadow.skipped. Both arms' outcomes are recorded in
// blastradius.rollout.calls. When both arms succeed and WithEqual's
// function (default reflect.DeepEqual) finds the results unequal, the
// mismatch is counted in blastradius.rollout.mismatches, fed to the gate's
// guard as a failure of the new arm, and logged through the gate's log
// budget with both results (WithRedact replaces them). When either arm
// fails, nothing is compared: a failure of new counts by its outcome.
//
// WithValidate judges both arms for the counts (an invalid result of new
// is a failure, and is not compared), but never changes what Shadow
// returns: the old arm's result is served as it is. The old arm runs with
// panic isolation too: a panic becomes a *PanicError that Shadow returns,
// as Run does. An invalid option is reported as an error wrapping
// ErrInvalidConfig, and no arm is called.
func Shadow[T any](ctx context.Context, g *Gate, key string, old, new func(context.Context) (T, error), opts ...CallOption) (T, error) {
	c := callConfig{timeout: defaultShadowTimeout, maxConcurrent: defaultShadowConcurrent}
	var (
		validate func(T) error
		equal    func(a, b T) bool
		redact   func(T) any
	)
	err := c.apply(opts, true)
	if err == nil {
		validate, err = typedFunc[func(T) error](c.validate, "WithValidate")
	}
	if err == nil {
		equal, err = typedFunc[func(a, b T) bool](c.equal, "WithEqual")
	}
	if err == nil {
		redact, err = typedFunc[func(T) any](c.redact, "WithRedact")
	}
	if err != nil {
		var zero T
		return zero, err
	}
	v, o, err := callArm(ctx, g, armOld, old, nil, 0)
	if o == outOK && validate != nil && !valid(validate, v) {
		o = outInvalid // counted as such, but served as it is
	}
	g.record(armOld, o, false)
	if !g.Enabled(key) {
		return v, err
	}
	if g.shadowInFlight.Add(1) > int64(c.maxConcurrent) {
		g.shadowInFlight.Add(-1)
		g.stats.skipped.Add(0, 1)
		return v, err
	}
	sc := &shadowCall[T]{g: g, key: key, new: new, timeout: c.timeout,
		validate: validate, equal: equal, redact: redact, old: v, oldOK: o == outOK}
	if c.async {
		go sc.run(context.WithoutCancel(ctx))
	} else {
		sc.run(context.WithoutCancel(ctx))
	}
	return v, err
}

// shadowCall is one shadow call of the new arm.
type shadowCall[T any] struct {
	g        *Gate
	key      string
	new      func(context.Context) (T, error)
	timeout  time.Duration
	validate func(T) error
	equal    func(a, b T) bool
	redact   func(T) any
	old      T
	oldOK    bool
}

// run calls the new arm, compares and records. It holds a concurrency slot,
// which it releases when the new arm has returned.
func (sc *shadowCall[T]) run(ctx context.Context) {
	g := sc.g
	defer g.shadowInFlight.Add(-1)
	v, o, _ := callArm(ctx, g, armNew, sc.new, sc.validate, sc.timeout)
	mismatch := o == outOK && sc.oldOK && !sc.same(v)
	g.record(armNew, o, mismatch)
	if mismatch {
		oldV, newV := any(sc.old), any(v)
		if sc.redact != nil {
			oldV, newV = sc.redact(sc.old), sc.redact(v)
		}
		g.noisy.LogAttrs(ctx, slog.LevelWarn, "rollout: shadow mismatch",
			slog.String(attrKey, g.name), slog.String("key", sc.key),
			slog.Any("old", oldV), slog.Any("new", newV))
	}
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
func (sc *shadowCall[T]) same(v T) (eq bool) {
	defer func() {
		if r := recover(); r != nil {
			eq = false
			sc.g.noisy.Error("rollout: shadow Equal panicked", attrKey, sc.g.name, "panic", fmt.Sprint(r))
		}
	}()
	if sc.equal != nil {
		return sc.equal(sc.old, v)
	}
	return reflect.DeepEqual(sc.old, v)
}

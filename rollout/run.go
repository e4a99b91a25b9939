package rollout

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/blastradius/blastradius/internal/telemetry"
)

// ErrPanic is wrapped by the error that Run and Shadow return when an arm
// panics: the panic is recovered and returned as a *PanicError.
var ErrPanic = errors.New("rollout: panic")

// ErrInvalidResult is wrapped by the error that Run returns when the
// WithValidate check rejects an arm's result.
var ErrInvalidResult = errors.New("rollout: invalid result")

// Variants: the two arms of a rollout, as the attribute
// feature_flag.result.variant reports them.
const (
	// VariantOld is the old code path: keys the gate does not enable.
	VariantOld = "old"
	// VariantNew is the new code path: keys the gate enables.
	VariantNew = "new"
)

// Outcomes of one call of an arm, as the attribute outcome of
// blastradius.rollout.calls reports them. Every outcome but OutcomeOK is a
// failure of the arm.
const (
	// OutcomeOK: the arm returned a nil error and a valid result.
	OutcomeOK = "ok"
	// OutcomeError: the arm returned an error (other than its own timeout).
	OutcomeError = "error"
	// OutcomePanic: the arm panicked; the panic was recovered.
	OutcomePanic = "panic"
	// OutcomeInvalid: the WithValidate check rejected the arm's result.
	OutcomeInvalid = "invalid"
	// OutcomeTimeout: the arm's error matches context.DeadlineExceeded and
	// the deadline was the arm's own (WithTimeout), not the caller's.
	OutcomeTimeout = "timeout"
)

type arm uint8

const (
	armOld arm = iota
	armNew
)

var variantNames = [...]string{armOld: VariantOld, armNew: VariantNew}

type outcome uint8

const (
	outOK outcome = iota
	outError
	outPanic
	outInvalid
	outTimeout
	numOutcomes
)

var outcomeNames = [...]string{outOK: OutcomeOK, outError: OutcomeError, outPanic: OutcomePanic, outInvalid: OutcomeInvalid, outTimeout: OutcomeTimeout}

// callIndex is the index of (arm, outcome) in runStats.calls.
func callIndex(a arm, o outcome) int { return int(a)*int(numOutcomes) + int(o) }

// Attribute names of the call counters.
const (
	attrVariant = "feature_flag.result.variant"
	attrOutcome = "outcome"
)

// runStats are a gate's per-call counts for Run and Shadow: atomic counts
// reported through observable counters, so recording a call is one atomic
// add with no attribute work and no SDK call.
type runStats struct {
	calls      *telemetry.Counts // callIndex(arm, outcome)
	mismatches *telemetry.Counts // one count
	skipped    *telemetry.Counts // one count
}

func newRunStats(m metric.Meter, name string) *runStats {
	key := attribute.String(attrKey, name)
	sets := make([][]attribute.KeyValue, 0, 2*numOutcomes)
	for a := range variantNames {
		for o := range outcomeNames {
			sets = append(sets, []attribute.KeyValue{key,
				attribute.String(attrVariant, variantNames[a]), attribute.String(attrOutcome, outcomeNames[o])})
		}
	}
	return &runStats{
		calls: telemetry.NewCounts(m, "blastradius.rollout.calls",
			"Calls of a rollout arm by Run and Shadow, by variant and outcome.", "{call}", sets...),
		mismatches: telemetry.NewCounts(m, "blastradius.rollout.mismatches",
			"Shadow calls whose new result differed from the old one.", "{call}", []attribute.KeyValue{key}),
		skipped: telemetry.NewCounts(m, "blastradius.rollout.shadow.skipped",
			"Shadow calls of the new arm skipped because the concurrency cap was reached.", "{call}", []attribute.KeyValue{key}),
	}
}

// record counts one call of an arm and feeds it to the guard, if any.
// mismatch reports a Shadow comparison that found the results unequal.
func (g *Gate) record(a arm, o outcome, mismatch bool) {
	if mismatch {
		g.stats.mismatches.Add(0, 1)
	}
	g.stats.calls.Add(callIndex(a, o), 1)
	if a == armNew && g.guard != nil {
		g.guard.observe(o, mismatch, 1)
	}
}

// PanicError is the error Run and Shadow return for an arm that panicked.
// It matches ErrPanic.
type PanicError struct {
	// Variant is the arm that panicked: VariantOld or VariantNew.
	Variant string
	// Value is the value passed to panic.
	Value any
	// Stack is the stack trace of the panicking goroutine.
	Stack []byte
}

// Error describes the panic.
func (e *PanicError) Error() string {
	return fmt.Sprintf("rollout: panic in %s arm: %v", e.Variant, e.Value)
}

// Is reports whether target is ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// CallOption configures one call of Run or Shadow. It is a small value, so
// passing options allocates nothing; options that take a function are
// generic in the result type and must match the T of the call.
type CallOption struct {
	kind optKind
	fn   any // func(T) error, func(a, b T) bool or func(T) any
	d    time.Duration
	n    int
}

type optKind uint8

const (
	optNone optKind = iota
	optValidate
	optFallback
	optTimeout
	optEqual
	optAsync
	optMaxConcurrent
	optRedact
)

var optNames = [...]string{optNone: "zero CallOption", optValidate: "WithValidate", optFallback: "WithFallback",
	optTimeout: "WithTimeout", optEqual: "WithEqual", optAsync: "WithAsync",
	optMaxConcurrent: "WithMaxConcurrent", optRedact: "WithRedact"}

// WithValidate checks every result an arm returns with a nil error. A
// non-nil error from validate makes the outcome "invalid": a failure of
// the arm, which Run returns as an error wrapping ErrInvalidResult and the
// validate error. For Run and Shadow.
func WithValidate[T any](validate func(T) error) CallOption {
	return CallOption{kind: optValidate, fn: validate}
}

// WithFallback makes Run call the old arm when the new arm fails (error,
// panic, invalid or timeout) and return the old arm's result instead. The
// failure still counts against the new arm. For Run only.
func WithFallback() CallOption { return CallOption{kind: optFallback} }

// WithTimeout bounds each arm with its own deadline (context.WithTimeout,
// which allocates, so Run pays for it only when the option is given). An
// error that matches context.DeadlineExceeded once that deadline has
// passed, while the caller's context is still live, is the outcome
// "timeout". The arm must honor its context: Run and a synchronous Shadow
// wait for it to return. In Run it applies to whichever arms run; in
// Shadow to the new arm only, whose default timeout is 1s.
func WithTimeout(d time.Duration) CallOption { return CallOption{kind: optTimeout, d: d} }

// WithEqual sets how Shadow compares the old and new results. The default
// is reflect.DeepEqual. For Shadow only.
func WithEqual[T any](equal func(a, b T) bool) CallOption {
	return CallOption{kind: optEqual, fn: equal}
}

// WithAsync makes Shadow run the new arm on its own goroutine after the
// old arm returned, so the caller does not wait for it. The goroutine ends
// when the new arm returns, which an arm that honors its context does by
// the shadow timeout. For Shadow only; the default is synchronous.
func WithAsync() CallOption { return CallOption{kind: optAsync} }

// WithMaxConcurrent caps the shadow calls of the new arm that may be in
// flight at once on the gate (default 32). Past the cap the new arm is
// skipped and the skip is counted in blastradius.rollout.shadow.skipped. A
// slot is held until the new arm actually returns, so an arm that ignores
// its context uses up slots rather than piling up goroutines. For Shadow
// only.
func WithMaxConcurrent(n int) CallOption { return CallOption{kind: optMaxConcurrent, n: n} }

// WithRedact makes Shadow log redact(old) and redact(new) on a mismatch
// instead of the two results, for results that hold personal data. For
// Shadow only.
func WithRedact[T any](redact func(T) any) CallOption {
	return CallOption{kind: optRedact, fn: redact}
}

// Defaults of Shadow.
const (
	defaultShadowTimeout    = time.Second
	defaultShadowConcurrent = 32
)

// callConfig is the result of applying CallOptions, still untyped.
type callConfig struct {
	validate, equal, redact any
	fallback, async         bool
	timeout                 time.Duration
	maxConcurrent           int
}

// apply applies opts, rejecting options that do not belong to the caller.
func (c *callConfig) apply(opts []CallOption, shadow bool) error {
	for _, o := range opts {
		switch o.kind {
		case optValidate:
			c.validate = o.fn
		case optTimeout:
			if o.d <= 0 {
				return fmt.Errorf("%w: WithTimeout(%v) must be positive", ErrInvalidConfig, o.d)
			}
			c.timeout = o.d
		case optFallback:
			if shadow {
				return optionMisuse(o.kind, "Shadow")
			}
			c.fallback = true
		case optEqual, optAsync, optMaxConcurrent, optRedact:
			if !shadow {
				return optionMisuse(o.kind, "Run")
			}
			switch o.kind {
			case optEqual:
				c.equal = o.fn
			case optAsync:
				c.async = true
			case optRedact:
				c.redact = o.fn
			default:
				if o.n < 1 {
					return fmt.Errorf("%w: WithMaxConcurrent(%d) must be at least 1", ErrInvalidConfig, o.n)
				}
				c.maxConcurrent = o.n
			}
		default:
			return fmt.Errorf("%w: zero CallOption", ErrInvalidConfig)
		}
	}
	return nil
}

func optionMisuse(k optKind, fn string) error {
	return fmt.Errorf("%w: %s does not apply to %s", ErrInvalidConfig, optNames[k], fn)
}

// typedFunc asserts that an option's function has type F.
func typedFunc[F any](fn any, name string) (F, error) {
	var zero F
	if fn == nil {
		return zero, nil
	}
	f, ok := fn.(F)
	if !ok {
		return zero, fmt.Errorf("%w: %s takes %T, the call needs %v", ErrInvalidConfig, name, fn, reflect.TypeFor[F]())
	}
	return f, nil
}

// Run routes key through the gate: to new if g.Enabled(key), otherwise to
// old, and returns that arm's result. It records the arm's outcome (ok,
// error, panic, invalid or timeout) in blastradius.rollout.calls and feeds
// the gate's guard, if any. A panic is recovered and returned as a
// *PanicError, which wraps ErrPanic. With WithFallback, a failure of new is
// followed by a call of old, whose result Run returns.
//
// Without WithTimeout, Run reads no clock and allocates nothing: its cost
// over calling the arm directly is Enabled plus one atomic add.
// An invalid option is reported as an error wrapping ErrInvalidConfig, and
// no arm is called.
func Run[T any](ctx context.Context, g *Gate, key string, old, new func(context.Context) (T, error), opts ...CallOption) (T, error) {
	var c callConfig
	var validate func(T) error
	if len(opts) > 0 {
		err := c.apply(opts, false)
		if err == nil {
			validate, err = typedFunc[func(T) error](c.validate, "WithValidate")
		}
		if err != nil {
			var zero T
			return zero, err
		}
	}
	if g.Enabled(key) {
		v, o, err := callArm(ctx, g, armNew, new, validate, c.timeout)
		g.record(armNew, o, false)
		if o == outOK || !c.fallback {
			return v, err
		}
	}
	v, o, err := callArm(ctx, g, armOld, old, validate, c.timeout)
	g.record(armOld, o, false)
	return v, err
}

// callArm calls f with panic isolation, an optional timeout and an
// optional validation, and classifies the outcome.
func callArm[T any](ctx context.Context, g *Gate, a arm, f func(context.Context) (T, error), validate func(T) error, timeout time.Duration) (v T, o outcome, err error) {
	if timeout > 0 {
		tctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		v, o, err = callArm(tctx, g, a, f, validate, 0)
		if o == outError && tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil &&
			errors.Is(err, context.DeadlineExceeded) {
			o = outTimeout
		}
		return v, o, err
	}
	defer func() {
		if r := recover(); r != nil {
			var zero T
			pe := &PanicError{Variant: variantNames[a], Value: r, Stack: debug.Stack()}
			v, o, err = zero, outPanic, pe
			g.noisy.Error("rollout: arm panicked", attrKey, g.name, attrVariant, pe.Variant,
				"panic", fmt.Sprint(r), "stack", string(pe.Stack))
		}
	}()
	v, err = f(ctx)
	if err != nil {
		return v, outError, err
	}
	if validate != nil {
		if verr := validate(v); verr != nil {
			var zero T
			return zero, outInvalid, fmt.Errorf("%w from %s arm: %w", ErrInvalidResult, variantNames[a], verr)
		}
	}
	return v, outOK, nil
}

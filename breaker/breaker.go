package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/blastradius/blastradius/internal/telemetry"
)

// ErrOpen is returned, without calling fn, when the breaker is open or its
// half-open probes are all in flight.
var ErrOpen = errors.New("breaker: open")

// ErrThrottled is returned, without calling fn, when adaptive throttling
// (WithAdaptiveThrottle) rejects an attempt locally.
var ErrThrottled = errors.New("breaker: throttled")

// ErrInvalidConfig is wrapped by every configuration error, from New and from
// calls given invalid arguments such as a nil fn.
var ErrInvalidConfig = errors.New("breaker: invalid config")

// State is the state of a Breaker.
type State int

// The states of a Breaker. The values match the blastradius.breaker.state gauge.
const (
	Closed   State = State(gobreaker.StateClosed)
	HalfOpen State = State(gobreaker.StateHalfOpen)
	Open     State = State(gobreaker.StateOpen)
)

// String returns "closed", "half-open" or "open".
func (s State) String() string { return gobreaker.State(s).String() }

// Outcome is how a call's error counts towards the breaker.
type Outcome int

// The outcomes a Classifier can return.
const (
	// Success counts towards closing the breaker.
	Success Outcome = iota
	// Failure counts towards tripping it.
	Failure
	// Excluded counts as neither: the call says nothing about the dependency.
	Excluded
)

// String returns "success", "failure" or "excluded".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Excluded:
		return "excluded"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Classifier decides how a non-nil error counts. ctx is the caller's context,
// so a classifier can tell the caller giving up from the dependency failing.
type Classifier func(ctx context.Context, err error) Outcome

// DefaultClassifier is the classification used without WithClassifier.
// An error is Excluded only when the caller went away: ctx, the caller's
// context, was canceled (ctx.Err() is context.Canceled, with a cause other
// than context.DeadlineExceeded), whatever the error is. Every other error
// is a Failure, timeouts included: an error returned once ctx's deadline
// has passed, a context.DeadlineExceeded, a net.Error whose Timeout is
// true. A dependency too slow for its callers' deadlines is failing them,
// so it opens the breaker.
func DefaultClassifier(ctx context.Context, err error) Outcome {
	if errors.Is(ctx.Err(), context.Canceled) && !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return Excluded
	}
	return Failure
}

// metric outcome indices, including those that never reach gobreaker.
const (
	outSuccess = iota
	outFailure
	outExcluded
	outRejected
	outThrottled
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"success", "failure", "excluded", "rejected", "throttled"}

// retry metric results.
const (
	retryAttempted = iota
	retryDenied
	numRetryResults
)

var retryResultNames = [numRetryResults]string{"attempted", "denied"}

// sentinels handed to gobreaker so its counters follow our classification.
var (
	errCountFailure  = errors.New("breaker: counted failure")
	errCountExcluded = errors.New("breaker: counted excluded")
)

type transition struct{ from, to State }

// Breaker is a circuit breaker built on gobreaker. It is safe for concurrent
// use. Create one with New.
type Breaker struct {
	name     string
	cb       *gobreaker.CircuitBreaker[struct{}]
	classify Classifier
	onChange func(name string, from, to State)
	logger   *slog.Logger

	retries       int
	initial       time.Duration
	maxInterval   time.Duration
	jitter        float64
	retryIf       func(error) bool
	retryAfterCap time.Duration
	budget        *Budget   // non-nil when retries > 0
	throttle      *throttle // nil without adaptive throttling
	now           func() time.Time

	calls     *telemetry.Counts // indexed by outcome; atomic, read at collection
	trans     metric.Int64Counter
	transAttr attribute.KeyValue

	retryCounter metric.Int64Counter
	retryOpts    [numRetryResults][]metric.AddOption

	// Transitions are queued under gobreaker's lock and dispatched after it
	// is released, so callbacks may call State.
	pendingN  atomic.Int32
	pendingMu sync.Mutex
	pending   []transition
	dispatch  sync.Mutex
}

// New returns a Breaker named name. Options are validated; an invalid one
// yields an error wrapping ErrInvalidConfig.
func New(name string, opts ...Option) (*Breaker, error) {
	c := defaults()
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.validate(name); err != nil {
		return nil, err
	}
	b := &Breaker{
		name:          name,
		classify:      c.classifier,
		onChange:      c.onChange,
		logger:        c.logger,
		retries:       c.retries,
		initial:       c.initial,
		maxInterval:   c.maxInterval,
		jitter:        c.jitter,
		retryIf:       c.retryIf,
		retryAfterCap: c.retryAfterCap,
		budget:        c.budget,
		now:           c.now,
	}
	if b.retries > 0 && b.budget == nil {
		bud, err := newBudget(&c)
		if err != nil {
			return nil, err
		}
		b.budget = bud
	}
	if c.throttleK > 0 {
		t, err := newThrottle(&c)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		b.throttle = t
	}
	if b.logger == nil {
		b.logger = slog.Default()
	}
	st := gobreaker.Settings{
		Name:          name,
		MaxRequests:   c.probes,
		Timeout:       c.openDuration,
		ReadyToTrip:   c.readyToTrip(),
		OnStateChange: b.enqueue,
		IsSuccessful:  func(err error) bool { return err == nil },
		IsExcluded:    func(err error) bool { return err == errCountExcluded },
	}
	if c.ratio > 0 {
		st.Interval = c.window
		st.BucketPeriod = c.bucket
	}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](st)
	b.instrument(c.meterProvider)
	return b, nil
}

func (b *Breaker) instrument(mp metric.MeterProvider) {
	m := telemetry.Meter(mp, "breaker")
	b.trans = telemetry.Counter(m, "blastradius.breaker.transitions", "Breaker state transitions.", "{transition}")
	b.transAttr = attribute.String("breaker.name", b.name)
	sets := make([][]attribute.KeyValue, len(outcomeNames))
	for i, n := range outcomeNames {
		sets[i] = []attribute.KeyValue{b.transAttr, attribute.String("outcome", n)}
	}
	b.calls = telemetry.NewCounts(m, "blastradius.breaker.calls", "Calls through a breaker, by outcome.", "{call}", sets...)
	b.retryCounter = telemetry.Counter(m, "blastradius.breaker.retries", "Retries after a failed attempt, by whether the budget allowed them.", "{retry}")
	for i, n := range retryResultNames {
		b.retryOpts[i] = telemetry.AddOpts(b.transAttr, attribute.String("result", n))
	}
	gauge, err := m.Int64ObservableGauge("blastradius.breaker.state",
		metric.WithDescription("Breaker state: 0 closed, 1 half-open, 2 open."), metric.WithUnit("{state}"))
	if err != nil {
		otel.Handle(err)
		return
	}
	obs := telemetry.ObserveOpts(b.transAttr)
	if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(gauge, int64(b.State()), obs...)
		return nil
	}, gauge); err != nil {
		otel.Handle(err)
	}
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// State returns the breaker's current state. Reading the state may move an
// open breaker whose open duration has passed to half-open, as in gobreaker;
// the resulting transition is reported after the lock is released.
func (b *Breaker) State() State {
	s := State(b.cb.State())
	b.flush()
	return s
}

// Do calls fn through the breaker. It returns ErrOpen without calling fn
// when the breaker rejects the call, ErrThrottled when adaptive throttling
// rejects it, and fn's error otherwise. A panic in fn is counted as a
// failure and re-panicked.
//
// With WithRetries, a failed attempt is retried after a jittered
// exponential backoff while the error is retryable, the retry budget allows
// it, the breaker is not open and the wait fits before ctx's deadline;
// ctx.Done ends a wait at once. When retries were made or denied and the
// call still failed, the error is a *RetryError wrapping the last attempt's
// error; otherwise it is fn's error unchanged.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) error {
	if fn == nil {
		return fmt.Errorf("%w: nil fn", ErrInvalidConfig)
	}
	if b.retries == 0 { // the common case: one attempt, nothing to deposit
		_, err := b.attempt(ctx, fn)
		return err
	}
	return b.run(ctx, fn, b.retries)
}

// Call is the generic form of Do: it calls fn through b and returns its value.
// On rejection it returns the zero T and ErrOpen. With retries, the value is
// the one returned by the last attempt.
func Call[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (T, error) {
	var v T
	if fn == nil {
		return v, fmt.Errorf("%w: nil fn", ErrInvalidConfig)
	}
	err := b.run(ctx, func(ctx context.Context) error {
		var err error
		v, err = fn(ctx)
		return err
	}, b.retries)
	return v, err
}

// attempt makes one call through gobreaker and records its outcome.
func (b *Breaker) attempt(ctx context.Context, fn func(context.Context) error) (int, error) {
	if b.throttle != nil && b.throttle.reject() {
		b.calls.Add(outThrottled, 1)
		return outThrottled, ErrThrottled
	}
	var err error
	out := outFailure // stays so if fn panics
	finished := false
	defer func() {
		if !finished { // fn panicked; gobreaker counted a failure and re-panics
			if b.throttle != nil {
				b.throttle.observe(outFailure)
			}
			b.calls.Add(outFailure, 1)
			b.flushIfPending()
		}
	}()
	_, gerr := b.cb.Execute(func() (struct{}, error) {
		err = fn(ctx)
		if err == nil {
			out = outSuccess
			return struct{}{}, nil
		}
		switch b.classify(ctx, err) {
		case Success:
			out = outSuccess
			return struct{}{}, nil
		case Excluded:
			out = outExcluded
			return struct{}{}, errCountExcluded
		}
		return struct{}{}, errCountFailure
	})
	finished = true
	b.flushIfPending()
	if gerr == gobreaker.ErrOpenState || gerr == gobreaker.ErrTooManyRequests {
		b.calls.Add(outRejected, 1)
		return outRejected, ErrOpen
	}
	if b.throttle != nil {
		b.throttle.observe(out)
	}
	b.calls.Add(out, 1)
	return out, err
}

// flushIfPending dispatches queued transitions, if any; the check is one
// atomic load.
func (b *Breaker) flushIfPending() {
	if b.pendingN.Load() != 0 {
		b.flush()
	}
}

// enqueue is gobreaker's OnStateChange; it runs under gobreaker's lock and
// only queues the transition.
func (b *Breaker) enqueue(_ string, from, to gobreaker.State) {
	b.pendingMu.Lock()
	b.pending = append(b.pending, transition{State(from), State(to)})
	b.pendingN.Add(1)
	b.pendingMu.Unlock()
}

// flush dispatches queued transitions in order, outside gobreaker's lock.
// One goroutine dispatches at a time; a callback that re-enters (for example
// through State) returns at once and its transitions are picked up by the
// loop of the goroutine already dispatching.
func (b *Breaker) flush() {
	for b.pendingN.Load() != 0 {
		if !b.dispatch.TryLock() {
			return
		}
		b.pendingMu.Lock()
		batch := b.pending
		b.pending = nil
		b.pendingN.Store(0)
		b.pendingMu.Unlock()
		for _, t := range batch {
			b.report(t)
		}
		b.dispatch.Unlock()
	}
}

func (b *Breaker) report(t transition) {
	ctx := context.Background()
	b.trans.Add(ctx, 1, metric.WithAttributes(b.transAttr,
		attribute.String("from", t.from.String()), attribute.String("to", t.to.String())))
	b.logger.LogAttrs(ctx, slog.LevelWarn, "breaker: state change",
		slog.String("breaker", b.name), slog.String("from", t.from.String()), slog.String("to", t.to.String()))
	if b.onChange != nil {
		b.onChange(b.name, t.from, t.to)
	}
}

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
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/blastradius/blastradius/internal/telemetry"
	"github.com/blastradius/blastradius/logbudget"
)

// ErrOpen is returned, without calling fn, when the breaker is open or its
// half-open probes are all in flight.
var ErrOpen = errors.New("breaker: open")

// ErrThrottled is returned, without calling fn, when adaptive throttling
// (WithAdaptiveThrottle) rejects an attempt locally.
var ErrThrottled = errors.New("breaker: throttled")

// ErrInvalidConfig is wrapped by every error that New, NewBudget and
// NewTransport return: an invalid option, named in the message with its
// value, or an empty name.
var ErrInvalidConfig = errors.New("breaker: invalid config")

// State is the state of a Breaker. The zero value is Closed.
type State int

// The states of a Breaker. The values match the blastradius.breaker.state gauge.
const (
	Closed   State = State(gobreaker.StateClosed)
	HalfOpen State = State(gobreaker.StateHalfOpen)
	Open     State = State(gobreaker.StateOpen)
)

// String returns "closed", "half-open" or "open".
func (s State) String() string { return gobreaker.State(s).String() }

// Outcome is how a call's error counts towards the breaker. The zero value
// is Success.
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
// A nil Classifier given to WithClassifier means DefaultClassifier.
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

// errNilFn is the panic value of Do and Call given a nil fn: a programming
// error, which says nothing about the dependency.
var errNilFn = errors.New("breaker: nil fn")

// sentinels handed to gobreaker so its counters follow our classification.
var (
	errCountFailure  = errors.New("breaker: counted failure")
	errCountExcluded = errors.New("breaker: counted excluded")
)

type transition struct{ from, to State }

// Breaker is a circuit breaker built on gobreaker. It is safe for concurrent
// use. The zero value is not usable: use New.
type Breaker struct {
	name     string
	cb       *gobreaker.CircuitBreaker[struct{}]
	classify Classifier
	onChange func(name string, from, to State)
	log      *slog.Logger // through a log budget
	now      func() time.Time

	retries     int
	initial     time.Duration
	maxInterval time.Duration
	jitter      float64
	retryIf     func(error) bool
	budget      *Budget   // non-nil when retries > 0
	throttle    *throttle // nil without adaptive throttling

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

// New returns a Breaker named name, which must not be empty. An invalid
// option yields an error wrapping ErrInvalidConfig that names it.
func New(name string, opts ...Option) (*Breaker, error) {
	if name == "" {
		return nil, invalid("empty name")
	}
	c := defaults()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyBreaker(&c); err != nil {
			return nil, err
		}
	}
	return newBreaker(name, &c, budgetLogger(&c)), nil
}

// budgetLogger returns c's logger through a log budget: the logger's own
// when its handler is a *logbudget.Handler, otherwise a new one.
func budgetLogger(c *config) *slog.Logger {
	// The options are valid, so For cannot fail.
	h, _ := logbudget.For(c.logger, logbudget.WithKeyAttr("reason"), logbudget.WithMeterProvider(c.meterProvider))
	return slog.New(h)
}

// newBreaker builds a breaker from a valid config; a Transport builds one
// per host from the same config and logger.
func newBreaker(name string, c *config, log *slog.Logger) *Breaker {
	b := &Breaker{
		name:        name,
		classify:    c.classifier,
		onChange:    c.onChange,
		log:         log,
		now:         c.now,
		retries:     c.retry.n,
		initial:     c.retry.initial,
		maxInterval: c.retry.maxInterval,
		jitter:      c.retry.jitter,
		retryIf:     c.retry.retryIf,
		budget:      c.retry.shared,
	}
	if b.retries > 0 && b.budget == nil {
		b.budget = newBudget(c.retry.own)
	}
	if c.throttle != nil {
		b.throttle = newThrottle(c.throttle, c.now)
	}
	st := gobreaker.Settings{
		Name:          name,
		MaxRequests:   c.probes,
		Timeout:       c.openDuration,
		ReadyToTrip:   c.readyToTrip,
		OnStateChange: b.enqueue,
		IsSuccessful:  func(err error) bool { return err == nil },
		IsExcluded:    func(err error) bool { return err == errCountExcluded },
	}
	if c.ratio {
		st.Interval = c.window
		st.BucketPeriod = c.bucket
	}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](st)
	b.instrument(c.meterProvider)
	return b
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
	obs := telemetry.ObserveOpts(b.transAttr)
	telemetry.Gauge(m, "blastradius.breaker.state", "Breaker state: 0 closed, 1 half-open, 2 open.", "{state}",
		func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(b.State()), obs...)
			return nil
		})
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// State returns the breaker's current state. Reading the state may move an
// open breaker whose open duration has passed to half-open, as in gobreaker;
// the resulting transition is reported after the lock is released.
func (b *Breaker) State() State {
	s := State(b.cb.State())
	b.flush(nil)
	return s
}

// Do calls fn through the breaker. It returns ErrOpen without calling fn
// when the breaker rejects the call, ErrThrottled when adaptive throttling
// rejects it, and fn's error otherwise. A panic in fn is counted as a
// failure and re-panicked; a nil fn panics without being counted.
//
// With WithRetries, a failed attempt is retried after a jittered
// exponential backoff while the error is retryable, the retry budget allows
// it, the breaker is not open and the wait fits before ctx's deadline;
// ctx.Done ends a wait at once. When retries were made or denied and the
// call still failed, the error is a *RetryError wrapping the last attempt's
// error; otherwise it is fn's error unchanged.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) error {
	if fn == nil {
		panic(errNilFn)
	}
	if b.retries == 0 { // the common case: one attempt, nothing to deposit
		_, err := b.attempt(ctx, fn)
		return err
	}
	return b.run(ctx, fn, b.retries)
}

// Call is the generic form of Do: it calls fn through b and returns its value.
// When the first attempt is rejected it returns the zero T and ErrOpen or
// ErrThrottled. With retries, the value is the one returned by the last
// attempt that called fn.
func Call[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (T, error) {
	var v T
	if fn == nil {
		panic(errNilFn)
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
		b.traceRejection(ctx, rejectThrottled)
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
			b.flushIfPending(ctx)
		}
	}()
	_, gerr := b.cb.Execute(func() (struct{}, error) {
		b.flushIfPending(ctx) // a transition this call made, such as open to half-open, before fn runs
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
	b.flushIfPending(ctx)
	if gerr == gobreaker.ErrOpenState || gerr == gobreaker.ErrTooManyRequests {
		b.calls.Add(outRejected, 1)
		if gerr == gobreaker.ErrOpenState {
			b.traceRejection(ctx, rejectOpen)
		} else {
			b.traceRejection(ctx, rejectProbes)
		}
		return outRejected, ErrOpen
	}
	if b.throttle != nil {
		b.throttle.observe(out)
	}
	b.calls.Add(out, 1)
	return out, err
}

// flushIfPending dispatches queued transitions, if any, recording them on
// ctx's span; the check is one atomic load.
func (b *Breaker) flushIfPending(ctx context.Context) {
	if b.pendingN.Load() != 0 {
		b.flush(telemetry.Recording(ctx))
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
// loop of the goroutine already dispatching. Each transition is also an
// event on span, the span of the call that dispatches it, unless span is nil.
func (b *Breaker) flush(span trace.Span) {
	for b.pendingN.Load() != 0 {
		if !b.dispatch.TryLock() {
			return
		}
		b.dispatchPending(span)
	}
}

// dispatchPending reports the queued transitions; b.dispatch is held. A
// callback that panics drops the rest of its batch, and the lock is released
// so that later transitions are still reported.
func (b *Breaker) dispatchPending(span trace.Span) {
	defer b.dispatch.Unlock()
	b.pendingMu.Lock()
	batch := b.pending
	b.pending = nil
	b.pendingN.Store(0)
	b.pendingMu.Unlock()
	for _, t := range batch {
		b.report(t, span)
	}
}

// transition log messages and levels, by the state entered: opening is a
// warning, probing and recovering are news. Each message has a budget of its
// own.
var transitionLogs = [...]struct {
	level slog.Level
	msg   string
}{
	Closed:   {slog.LevelInfo, "breaker: closed"},
	HalfOpen: {slog.LevelInfo, "breaker: half-open"},
	Open:     {slog.LevelWarn, "breaker: opened"},
}

func (b *Breaker) report(t transition, span trace.Span) {
	ctx := context.Background()
	from, to := t.from.String(), t.to.String()
	if span != nil {
		span.AddEvent(eventTransition, trace.WithAttributes(b.transAttr, attribute.String("from", from), attribute.String("to", to)))
	}
	b.trans.Add(ctx, 1, metric.WithAttributes(b.transAttr, attribute.String("from", from), attribute.String("to", to)))
	l := transitionLogs[t.to]
	b.log.LogAttrs(ctx, l.level, l.msg, slog.String("breaker", b.name), slog.String("from", from), slog.String("to", to))
	if b.onChange != nil {
		b.onChange(b.name, t.from, t.to)
	}
}

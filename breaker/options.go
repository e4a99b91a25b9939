package breaker

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/metric"
)

// Option configures a Breaker in New. Every Option is also a
// TransportOption: given to NewTransport, it configures each per-host
// breaker. A nil Option is skipped, as are nil options of the other kinds.
type Option interface {
	TransportOption
	applyBreaker(*config) error
}

// TransportOption configures a Transport in NewTransport: any Option (for
// the per-host breakers), WithKeyFunc or WithRetryAfterCap.
type TransportOption interface {
	applyTransport(*transportConfig) error
}

// RetryOption configures the retries that WithRetries enables.
type RetryOption interface {
	applyRetry(*retryConfig) error
}

// BudgetOption configures a retry budget: the shared one that NewBudget
// returns or, given to WithRetries (every BudgetOption is also a
// RetryOption), the breaker's own.
type BudgetOption interface {
	RetryOption
	applyBudget(*budgetConfig) error
}

// ThrottleOption configures the adaptive throttle that WithAdaptiveThrottle
// enables.
type ThrottleOption interface {
	applyThrottle(*throttleConfig) error
}

// The defaults, in one place.
const (
	DefaultConsecutiveFailures = 5
	DefaultOpenDuration        = 60 * time.Second
	DefaultHalfOpenProbes      = 1

	// DefaultInitialInterval and DefaultMaxInterval bound the exponential
	// backoff between retries; each wait doubles, up to the maximum.
	DefaultInitialInterval = 100 * time.Millisecond
	DefaultMaxInterval     = 2 * time.Second
	// DefaultJitter is the backoff's randomization factor: each wait is
	// drawn uniformly from [w·(1−j), w·(1+j)].
	DefaultJitter = 0.5
	// DefaultBudgetRatio, DefaultBudgetMinPerSecond and DefaultBudgetWindow
	// are the retry budget's defaults: retries may be 10% of the requests of
	// the last 10 s, plus 10 retries per second.
	DefaultBudgetRatio        = 0.1
	DefaultBudgetMinPerSecond = 10
	DefaultBudgetWindow       = 10 * time.Second
	// DefaultThrottleK is the K the SRE book suggests for the adaptive
	// throttle: the backend may reject up to 1 − 1/K of requests before the
	// client starts to throttle.
	DefaultThrottleK = 2
	// DefaultThrottleWindow is the adaptive throttle's window, as the SRE
	// book suggests.
	DefaultThrottleWindow = 2 * time.Minute
	// DefaultRetryAfterCap caps the wait a Retry-After header can ask for.
	DefaultRetryAfterCap = 10 * time.Second
)

// backoffMultiplier is the growth factor of the exponential backoff.
const backoffMultiplier = 2

// maxRatioBuckets bounds the buckets of WithFailureRatio's window.
const maxRatioBuckets = 1000

// minWindow is the shortest budget or throttle window: one millisecond per
// bucket.
const minWindow = windowBuckets * time.Millisecond

type config struct {
	readyToTrip   func(gobreaker.Counts) bool
	ratio         bool // readyToTrip is a failure ratio over window
	window        time.Duration
	bucket        time.Duration
	openDuration  time.Duration
	probes        uint32
	classifier    Classifier
	onChange      func(name string, from, to State)
	logger        *slog.Logger
	meterProvider metric.MeterProvider
	now           func() time.Time
	retry         retryConfig     // retry.n == 0: no retries
	throttle      *throttleConfig // nil: no adaptive throttle
}

type retryConfig struct {
	n           int
	initial     time.Duration
	maxInterval time.Duration
	jitter      float64
	retryIf     func(error) bool
	shared      *Budget      // nil: the breaker's own budget, built from own
	own         budgetConfig // tuned by BudgetOptions
	tuned       bool         // a BudgetOption was given
}

type budgetConfig struct {
	ratio        float64
	minPerSecond float64
	window       time.Duration
}

type throttleConfig struct {
	k      float64
	window time.Duration
	random func() float64
}

type transportConfig struct {
	breaker       config
	key           func(*http.Request) string
	retryAfterCap time.Duration
}

func defaults() config {
	return config{
		readyToTrip:  consecutive(DefaultConsecutiveFailures),
		openDuration: DefaultOpenDuration,
		probes:       DefaultHalfOpenProbes,
		classifier:   DefaultClassifier,
		now:          time.Now,
	}
}

func defaultBudget() budgetConfig {
	return budgetConfig{ratio: DefaultBudgetRatio, minPerSecond: DefaultBudgetMinPerSecond, window: DefaultBudgetWindow}
}

func consecutive(n uint32) func(gobreaker.Counts) bool {
	return func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= n }
}

// invalid returns an error wrapping ErrInvalidConfig; format starts with
// the option and its value, as in "WithJitter(2): must be in [0, 1)".
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// option is an Option: it configures a breaker, alone or in a Transport.
type option func(*config) error

func (o option) applyBreaker(c *config) error            { return o(c) }
func (o option) applyTransport(c *transportConfig) error { return o(&c.breaker) }

type transportOption func(*transportConfig) error

func (o transportOption) applyTransport(c *transportConfig) error { return o(c) }

type retryOption func(*retryConfig) error

func (o retryOption) applyRetry(c *retryConfig) error { return o(c) }

type budgetOption func(*budgetConfig) error

func (o budgetOption) applyBudget(c *budgetConfig) error { return o(c) }
func (o budgetOption) applyRetry(c *retryConfig) error {
	c.tuned = true
	return o(&c.own)
}

type throttleOption func(*throttleConfig) error

func (o throttleOption) applyThrottle(c *throttleConfig) error { return o(c) }

// WithConsecutiveFailures trips the breaker after n consecutive failures,
// n in [1, 2^32). This is the default policy, with n =
// DefaultConsecutiveFailures. The last trip policy given wins.
func WithConsecutiveFailures(n int) Option {
	return option(func(c *config) error {
		if n < 1 || n > math.MaxUint32 {
			return invalid("WithConsecutiveFailures(%d): must be in [1, 2^32)", n)
		}
		c.readyToTrip, c.ratio = consecutive(uint32(n)), false
		return nil
	})
}

// WithFailureRatio trips the breaker when, over a rolling window, at least
// minCalls calls counted (successes plus failures) and the share of failures
// is at least ratio, in (0, 1]. The window is made of buckets of
// bucketPeriod each (gobreaker's Interval and BucketPeriod), at most 1000
// of them (gobreaker allocates them all and may walk them all on a call), so
// bucketPeriod is at least window/1000; a window that is not a multiple of
// bucketPeriod is rounded up to one. A bucketPeriod of 0 makes it a fixed
// window that resets every window. The last trip policy given wins.
func WithFailureRatio(ratio float64, minCalls int, window, bucketPeriod time.Duration) Option {
	return option(func(c *config) error {
		name := fmt.Sprintf("WithFailureRatio(%v, %d, %v, %v)", ratio, minCalls, window, bucketPeriod)
		switch {
		case math.IsNaN(ratio) || ratio <= 0 || ratio > 1:
			return invalid("%s: ratio must be in (0, 1]", name)
		case minCalls < 1 || minCalls > math.MaxUint32:
			return invalid("%s: minimum calls must be in [1, 2^32)", name)
		case window <= 0:
			return invalid("%s: window must be positive", name)
		case bucketPeriod < 0 || bucketPeriod > window:
			return invalid("%s: bucket period must be in [0, window]", name)
		case bucketPeriod > 0 && (window-1)/bucketPeriod >= maxRatioBuckets:
			return invalid("%s: window must hold at most %d buckets", name, maxRatioBuckets)
		}
		n := uint32(minCalls)
		c.readyToTrip = func(counts gobreaker.Counts) bool {
			valid := counts.TotalSuccesses + counts.TotalFailures
			return valid >= n && float64(counts.TotalFailures) >= ratio*float64(valid)
		}
		c.ratio, c.window, c.bucket = true, window, bucketPeriod
		return nil
	})
}

// WithOpenDuration sets how long the breaker stays open before it lets
// half-open probes through; d must be positive. Default
// DefaultOpenDuration.
func WithOpenDuration(d time.Duration) Option {
	return option(func(c *config) error {
		if d <= 0 {
			return invalid("WithOpenDuration(%v): must be positive", d)
		}
		c.openDuration = d
		return nil
	})
}

// WithHalfOpenProbes sets how many calls the half-open breaker lets through,
// n in [1, 2^32); that many consecutive successes close it, and any failure
// reopens it. Default DefaultHalfOpenProbes.
func WithHalfOpenProbes(n int) Option {
	return option(func(c *config) error {
		if n < 1 || n > math.MaxUint32 {
			return invalid("WithHalfOpenProbes(%d): must be in [1, 2^32)", n)
		}
		c.probes = uint32(n)
		return nil
	})
}

// WithClassifier sets how non-nil errors count: Success, Failure or
// Excluded. nil errors are always successes. Nil means DefaultClassifier,
// which a custom classifier can also call.
func WithClassifier(f Classifier) Option {
	return option(func(c *config) error {
		if f == nil {
			f = DefaultClassifier
		}
		c.classifier = f
		return nil
	})
}

// WithOnStateChange registers f to be called on every state transition. f
// runs after gobreaker has released its lock, in transition order, on the
// goroutine whose call caused or observed the transition; it may call the
// breaker's methods. A panic in f goes up through that call, and later
// transitions are still reported. Nil means no callback.
func WithOnStateChange(f func(name string, from, to State)) Option {
	return option(func(c *config) error { c.onChange = f; return nil })
}

// WithLogger sets the logger of state transitions; nil means
// slog.Default(). If its handler is a *logbudget.Handler, the breaker logs
// through that budget; otherwise through a budget of its own with
// logbudget's defaults (a Transport's breakers share one).
func WithLogger(l *slog.Logger) Option {
	return option(func(c *config) error { c.logger = l; return nil })
}

// WithMeterProvider sets the OpenTelemetry meter provider; nil means the
// otel global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return option(func(c *config) error { c.meterProvider = mp; return nil })
}

// WithClock sets the clock of the retry budget, the throttle window, the
// backoff and the deadline check; nil means time.Now. The state machine
// (gobreaker) and the waits between retries use the runtime's clock; in a
// testing/synctest bubble both are fake, which is how the tests run.
func WithClock(now func() time.Time) Option {
	return option(func(c *config) error {
		if now == nil {
			now = time.Now
		}
		c.now = now
		return nil
	})
}

// WithRetries retries a failed call up to n times after its first attempt,
// n in [0, 100] (0: no retries, the default). A call is retried only when
// its error is retryable (WithRetryIf), the retry budget allows it, the
// breaker is not open, and the backoff wait fits before ctx's deadline.
// opts tune the backoff (WithBackoff, WithJitter), what is retried
// (WithRetryIf) and the budget: a breaker draws from a budget of its own,
// tuned by BudgetOptions, unless WithBudget shares one. A later WithRetries
// replaces an earlier one.
func WithRetries(n int, opts ...RetryOption) Option {
	return option(func(c *config) error {
		if n < 0 || n > 100 {
			return invalid("WithRetries(%d): must be in [0, 100]", n)
		}
		r := retryConfig{n: n, initial: DefaultInitialInterval, maxInterval: DefaultMaxInterval,
			jitter: DefaultJitter, own: defaultBudget()}
		for _, o := range opts {
			if o == nil {
				continue
			}
			if err := o.applyRetry(&r); err != nil {
				return err
			}
		}
		if r.shared != nil && r.tuned {
			return invalid("WithBudget: a shared budget is tuned in NewBudget, not by BudgetOptions given with it")
		}
		c.retry = r
		return nil
	})
}

// WithBackoff sets the exponential backoff between retries: the first wait
// is initial, each next one doubles, up to maxInterval (before jitter).
// initial must be positive and at most maxInterval. Defaults
// DefaultInitialInterval and DefaultMaxInterval.
func WithBackoff(initial, maxInterval time.Duration) RetryOption {
	return retryOption(func(c *retryConfig) error {
		if initial <= 0 || maxInterval < initial {
			return invalid("WithBackoff(%v, %v): initial must be positive and at most the maximum", initial, maxInterval)
		}
		c.initial, c.maxInterval = initial, maxInterval
		return nil
	})
}

// WithJitter sets the backoff's randomization factor j in [0, 1): a wait w
// becomes uniform in [w·(1−j), w·(1+j)]. Default DefaultJitter; 0 disables
// jitter.
func WithJitter(j float64) RetryOption {
	return retryOption(func(c *retryConfig) error {
		if math.IsNaN(j) || j < 0 || j >= 1 {
			return invalid("WithJitter(%v): must be in [0, 1)", j)
		}
		c.jitter = j
		return nil
	})
}

// WithRetryIf sets which errors are retried; nil means the default: an
// error the classifier counts as a Failure. Whatever f says, these are
// never retried: nil, ErrOpen, ErrThrottled, a *backoff.PermanentError
// (wrap an error with backoff.Permanent to stop retries), and any error once
// ctx is done.
func WithRetryIf(f func(err error) bool) RetryOption {
	return retryOption(func(c *retryConfig) error { c.retryIf = f; return nil })
}

// WithBudget makes retries draw from b, which may be shared between
// breakers and transports; nil means the breaker's own budget. A shared
// budget is tuned in NewBudget: WithRetries refuses BudgetOptions next to
// WithBudget.
func WithBudget(b *Budget) RetryOption {
	return retryOption(func(c *retryConfig) error { c.shared = b; return nil })
}

// WithBudgetRatio sets the share of recent requests that may be retried, r
// in [0, 100]. Default DefaultBudgetRatio (10%).
func WithBudgetRatio(r float64) BudgetOption {
	return budgetOption(func(c *budgetConfig) error {
		if math.IsNaN(r) || r < 0 || r > 100 {
			return invalid("WithBudgetRatio(%v): must be in [0, 100]", r)
		}
		c.ratio = r
		return nil
	})
}

// WithBudgetMinPerSecond sets the floor of retries per second allowed
// whatever the ratio, so that low-traffic callers can still retry; n in
// [0, 1e6]. The floor is a golang.org/x/time/rate limiter with a burst of
// ceil(n). Default DefaultBudgetMinPerSecond; 0 disables the floor.
func WithBudgetMinPerSecond(n float64) BudgetOption {
	return budgetOption(func(c *budgetConfig) error {
		if math.IsNaN(n) || n < 0 || n > 1e6 {
			return invalid("WithBudgetMinPerSecond(%v): must be in [0, 1e6]", n)
		}
		c.minPerSecond = n
		return nil
	})
}

// WithBudgetWindow sets how far back the budget counts requests and
// retries, at least 10ms. It is split into 10 buckets. Default
// DefaultBudgetWindow.
func WithBudgetWindow(d time.Duration) BudgetOption {
	return budgetOption(func(c *budgetConfig) error {
		if d < minWindow {
			return invalid("WithBudgetWindow(%v): must be at least %v", d, minWindow)
		}
		c.window = d
		return nil
	})
}

// WithAdaptiveThrottle enables client-side adaptive throttling (Google SRE
// book, "Handling Overload"): each attempt is rejected locally, with
// ErrThrottled and without calling fn, with probability
// max(0, (requests − k·accepts) / (requests + 1)), where requests counts the
// attempts of the window (throttled ones included) and accepts those that
// succeeded. k is in [1, 100]; a lower k throttles sooner, and the book
// suggests DefaultThrottleK. opts set the window (WithThrottleWindow) and
// the random source (WithRandom). A later WithAdaptiveThrottle replaces an
// earlier one.
func WithAdaptiveThrottle(k float64, opts ...ThrottleOption) Option {
	return option(func(c *config) error {
		if math.IsNaN(k) || k < 1 || k > 100 {
			return invalid("WithAdaptiveThrottle(%v): k must be in [1, 100]", k)
		}
		t := &throttleConfig{k: k, window: DefaultThrottleWindow, random: rand.Float64}
		for _, o := range opts {
			if o == nil {
				continue
			}
			if err := o.applyThrottle(t); err != nil {
				return err
			}
		}
		c.throttle = t
		return nil
	})
}

// WithThrottleWindow sets how far back the adaptive throttle counts
// attempts and accepts, at least 10ms. It is split into 10 buckets.
// Default DefaultThrottleWindow.
func WithThrottleWindow(d time.Duration) ThrottleOption {
	return throttleOption(func(c *throttleConfig) error {
		if d < minWindow {
			return invalid("WithThrottleWindow(%v): must be at least %v", d, minWindow)
		}
		c.window = d
		return nil
	})
}

// WithRandom sets the source of uniform numbers in [0, 1) for the adaptive
// throttle's decisions; nil means math/rand/v2.Float64. The backoff's
// jitter uses backoff/v4's own source.
func WithRandom(f func() float64) ThrottleOption {
	return throttleOption(func(c *throttleConfig) error {
		if f == nil {
			f = rand.Float64
		}
		c.random = f
		return nil
	})
}

// WithKeyFunc sets how a Transport picks the breaker for a request; nil
// means the default, the request's URL host (host:port as written). Each
// distinct key gets its own breaker, named by the key, so keys must come
// from a bounded set.
func WithKeyFunc(f func(*http.Request) string) TransportOption {
	return transportOption(func(c *transportConfig) error {
		if f == nil {
			f = hostKey
		}
		c.key = f
		return nil
	})
}

// WithRetryAfterCap caps the wait that a Retry-After header (on 429 and
// 503) can impose before a Transport's retry; d must not be negative.
// Default DefaultRetryAfterCap. The wait is the larger of the backoff and
// the capped Retry-After.
func WithRetryAfterCap(d time.Duration) TransportOption {
	return transportOption(func(c *transportConfig) error {
		if d < 0 {
			return invalid("WithRetryAfterCap(%v): must not be negative", d)
		}
		c.retryAfterCap = d
		return nil
	})
}

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

// Option configures a Breaker, a Budget (NewBudget accepts only the
// WithBudget… options and WithClock) or a Transport (NewTransport applies
// every option to each per-host breaker and reads the transport options,
// WithKeyFunc and WithRetryAfterCap; New ignores the transport options).
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// budgetOption is an Option that NewBudget accepts too.
type budgetOption func(*config)

func (f budgetOption) apply(c *config) { f(c) }

type config struct {
	consecutive   uint32
	ratio         float64
	minCalls      uint32
	window        time.Duration
	bucket        time.Duration
	openDuration  time.Duration
	probes        uint32
	classifier    Classifier
	onChange      func(name string, from, to State)
	logger        *slog.Logger
	meterProvider metric.MeterProvider

	retries       int
	initial       time.Duration
	maxInterval   time.Duration
	jitter        float64
	retryIf       func(error) bool
	budget        *Budget
	budgetTuned   bool
	budgetRatio   float64
	budgetMin     float64
	budgetWindow  time.Duration
	throttleK     float64
	throttleWin   time.Duration
	random        func() float64
	now           func() time.Time
	keyFunc       func(*http.Request) string
	retryAfterCap time.Duration

	errs []error
}

// The defaults, in one place.
const (
	DefaultConsecutiveFailures = 5
	DefaultOpenDuration        = 60 * time.Second
	DefaultHalfOpenProbes      = 1

	// DefaultRetries is the number of retries after the first attempt: none.
	DefaultRetries = 0
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
	// DefaultThrottleK is the adaptive throttle's K: the backend may reject
	// up to 1 − 1/K of requests before the client starts to throttle.
	DefaultThrottleK = 2
	// DefaultThrottleWindow is the adaptive throttle's window, as the SRE
	// book suggests.
	DefaultThrottleWindow = 2 * time.Minute
	// DefaultRetryAfterCap caps the wait a Retry-After header can ask for.
	DefaultRetryAfterCap = 10 * time.Second
)

// backoffMultiplier is the growth factor of the exponential backoff.
const backoffMultiplier = 2

func defaults() config {
	return config{
		consecutive:   DefaultConsecutiveFailures,
		openDuration:  DefaultOpenDuration,
		probes:        DefaultHalfOpenProbes,
		classifier:    DefaultClassifier,
		retries:       DefaultRetries,
		initial:       DefaultInitialInterval,
		maxInterval:   DefaultMaxInterval,
		jitter:        DefaultJitter,
		budgetRatio:   DefaultBudgetRatio,
		budgetMin:     DefaultBudgetMinPerSecond,
		budgetWindow:  DefaultBudgetWindow,
		random:        rand.Float64,
		now:           time.Now,
		retryAfterCap: DefaultRetryAfterCap,
	}
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
}

func (c *config) validate(name string) error {
	if name == "" {
		c.fail("empty name")
	}
	if c.budget != nil && c.budgetTuned {
		c.fail("WithBudget and the WithBudget… tuning options are exclusive: tune the shared budget in NewBudget")
	}
	if len(c.errs) > 0 {
		return c.errs[0]
	}
	return nil
}

func (c *config) readyToTrip() func(gobreaker.Counts) bool {
	if c.ratio > 0 {
		ratio, minCalls := c.ratio, c.minCalls
		return func(n gobreaker.Counts) bool {
			valid := n.TotalSuccesses + n.TotalFailures
			return valid >= minCalls && float64(n.TotalFailures) >= ratio*float64(valid)
		}
	}
	n := c.consecutive
	return func(counts gobreaker.Counts) bool { return counts.ConsecutiveFailures >= n }
}

// WithConsecutiveFailures trips the breaker after n consecutive failures.
// This is the default policy, with n = DefaultConsecutiveFailures.
func WithConsecutiveFailures(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 || n > math.MaxUint32 {
			c.fail("consecutive failures %d out of range [1, 2^32)", n)
			return
		}
		c.consecutive, c.ratio = uint32(n), 0
	})
}

// WithFailureRatio trips the breaker when, over a rolling window, at least
// minCalls calls counted (successes plus failures) and the share of failures
// is at least ratio. The window is made of buckets of bucketPeriod each
// (gobreaker's Interval and BucketPeriod); a bucketPeriod of 0 makes it a
// fixed window that resets every window.
func WithFailureRatio(ratio float64, minCalls int, window, bucketPeriod time.Duration) Option {
	return optionFunc(func(c *config) {
		switch {
		case math.IsNaN(ratio) || ratio <= 0 || ratio > 1:
			c.fail("failure ratio %v out of range (0, 1]", ratio)
		case minCalls < 1 || minCalls > math.MaxUint32:
			c.fail("minimum calls %d out of range [1, 2^32)", minCalls)
		case window <= 0:
			c.fail("window %v must be positive", window)
		case bucketPeriod < 0 || bucketPeriod > window:
			c.fail("bucket period %v out of range [0, window]", bucketPeriod)
		default:
			c.ratio, c.minCalls, c.window, c.bucket = ratio, uint32(minCalls), window, bucketPeriod
		}
	})
}

// WithOpenDuration sets how long the breaker stays open before it lets
// half-open probes through. Default DefaultOpenDuration.
func WithOpenDuration(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.fail("open duration %v must be positive", d)
			return
		}
		c.openDuration = d
	})
}

// WithHalfOpenProbes sets how many calls the half-open breaker lets through;
// that many consecutive successes close it, and any failure reopens it.
// Default DefaultHalfOpenProbes.
func WithHalfOpenProbes(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 || n > math.MaxUint32 {
			c.fail("half-open probes %d out of range [1, 2^32)", n)
			return
		}
		c.probes = uint32(n)
	})
}

// WithClassifier sets how non-nil errors count: Success, Failure or
// Excluded. nil errors are always successes. DefaultClassifier is the
// default and can be called from a custom classifier.
func WithClassifier(f Classifier) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			c.fail("nil classifier")
			return
		}
		c.classifier = f
	})
}

// WithOnStateChange registers f to be called on every state transition. f
// runs after gobreaker has released its lock, in transition order, on the
// goroutine whose call caused or observed the transition; it may call the
// breaker's methods.
func WithOnStateChange(f func(name string, from, to State)) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			c.fail("nil state-change callback")
			return
		}
		c.onChange = f
	})
}

// WithLogger sets the logger for state changes. Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithMeterProvider sets the OpenTelemetry meter provider. Default the otel
// global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}

// WithRetries sets how many times a failed call is retried after its first
// attempt. Default DefaultRetries (0: no retries). A call is retried only
// when its error is retryable (see WithRetryIf), the retry budget allows it,
// the breaker is not open, and the backoff wait fits before ctx's deadline.
// A breaker with retries and no WithBudget gets its own default budget.
func WithRetries(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 || n > 100 {
			c.fail("retries %d out of range [0, 100]", n)
			return
		}
		c.retries = n
	})
}

// WithBackoff sets the exponential backoff between retries: the first wait
// is initial, each next one doubles, up to max (before jitter). Defaults
// DefaultInitialInterval and DefaultMaxInterval.
func WithBackoff(initial, max time.Duration) Option {
	return optionFunc(func(c *config) {
		if initial <= 0 || max < initial {
			c.fail("backoff initial %v must be positive and at most max %v", initial, max)
			return
		}
		c.initial, c.maxInterval = initial, max
	})
}

// WithJitter sets the backoff's randomization factor j in [0, 1): a wait w
// becomes uniform in [w·(1−j), w·(1+j)]. Default DefaultJitter; 0 disables
// jitter.
func WithJitter(j float64) Option {
	return optionFunc(func(c *config) {
		if math.IsNaN(j) || j < 0 || j >= 1 {
			c.fail("jitter %v out of range [0, 1)", j)
			return
		}
		c.jitter = j
	})
}

// WithRetryIf sets which errors are retried. By default an error is retried
// when the classifier counts it as a Failure. Whatever f says, these are
// never retried: nil, ErrOpen, ErrThrottled, a *backoff.PermanentError
// (wrap an error with backoff.Permanent to stop retries), and any error once
// ctx is done.
func WithRetryIf(f func(err error) bool) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			c.fail("nil retry predicate")
			return
		}
		c.retryIf = f
	})
}

// WithBudget makes retries draw from b, which may be shared between
// breakers and transports. Without it, a breaker with retries gets its own
// budget built from the WithBudget… options (or their defaults).
func WithBudget(b *Budget) Option {
	return optionFunc(func(c *config) {
		if b == nil {
			c.fail("nil budget")
			return
		}
		c.budget = b
	})
}

// WithBudgetRatio sets the share of recent requests that may be retried.
// Default DefaultBudgetRatio (10%). Applies to NewBudget and to a breaker's
// own budget.
func WithBudgetRatio(r float64) Option {
	return budgetOption(func(c *config) {
		if math.IsNaN(r) || r < 0 || r > 100 {
			c.fail("budget ratio %v out of range [0, 100]", r)
			return
		}
		c.budgetRatio, c.budgetTuned = r, true
	})
}

// WithBudgetMinPerSecond sets the floor of retries per second allowed
// whatever the ratio, so that low-traffic callers can still retry. The
// floor is a golang.org/x/time/rate limiter with a burst of ceil(n). Default
// DefaultBudgetMinPerSecond; 0 disables the floor.
func WithBudgetMinPerSecond(n float64) Option {
	return budgetOption(func(c *config) {
		if math.IsNaN(n) || n < 0 || n > 1e6 {
			c.fail("budget minimum %v per second out of range [0, 1e6]", n)
			return
		}
		c.budgetMin, c.budgetTuned = n, true
	})
}

// WithBudgetWindow sets how far back the budget counts requests and
// retries. It is split into 10 buckets. Default DefaultBudgetWindow.
func WithBudgetWindow(d time.Duration) Option {
	return budgetOption(func(c *config) {
		if d < windowBuckets*time.Millisecond {
			c.fail("budget window %v shorter than %v", d, windowBuckets*time.Millisecond)
			return
		}
		c.budgetWindow, c.budgetTuned = d, true
	})
}

// WithAdaptiveThrottle enables client-side adaptive throttling (Google SRE
// book, "Handling Overload"): each attempt is rejected locally, with
// ErrThrottled and without calling fn, with probability
// max(0, (requests − k·accepts) / (requests + 1)), where requests counts the
// attempts of the last window (throttled ones included) and accepts those
// that succeeded. k = 0 means DefaultThrottleK (2); a lower k throttles
// sooner. window = 0 means DefaultThrottleWindow; it is split into 10
// buckets.
func WithAdaptiveThrottle(k float64, window time.Duration) Option {
	return optionFunc(func(c *config) {
		if k == 0 {
			k = DefaultThrottleK
		}
		if window == 0 {
			window = DefaultThrottleWindow
		}
		switch {
		case math.IsNaN(k) || k < 1 || k > 100:
			c.fail("throttle k %v out of range [1, 100]", k)
		case window < windowBuckets*time.Millisecond:
			c.fail("throttle window %v shorter than %v", window, windowBuckets*time.Millisecond)
		default:
			c.throttleK, c.throttleWin = k, window
		}
	})
}

// WithRandom sets the source of uniform numbers in [0, 1) for the adaptive
// throttle's decisions. Default math/rand/v2.Float64. The backoff's jitter
// uses backoff/v4's own source.
func WithRandom(f func() float64) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			c.fail("nil random source")
			return
		}
		c.random = f
	})
}

// WithClock sets the clock of the retry budget, the throttle window, the
// backoff and the deadline check. Default time.Now. The state machine
// (gobreaker) and the waits between retries use the runtime's clock; in a
// testing/synctest bubble both are fake, which is how the tests run.
func WithClock(now func() time.Time) Option {
	return budgetOption(func(c *config) {
		if now == nil {
			c.fail("nil clock")
			return
		}
		c.now = now
	})
}

// WithKeyFunc sets how a Transport picks the breaker for a request. Default
// the request's URL host (host:port as written). Each distinct key gets its
// own breaker, named by the key, so keys must come from a bounded set.
// Transport only.
func WithKeyFunc(f func(*http.Request) string) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			c.fail("nil key func")
			return
		}
		c.keyFunc = f
	})
}

// WithRetryAfterCap caps the wait a Retry-After header (on 429 and 503) can
// impose before a retry. Default DefaultRetryAfterCap. The wait is the
// larger of the backoff and the capped Retry-After. Transport only.
func WithRetryAfterCap(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.fail("retry-after cap %v is negative", d)
			return
		}
		c.retryAfterCap = d
	})
}

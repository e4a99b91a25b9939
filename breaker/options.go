package breaker

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/metric"
)

// Option configures a Breaker.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

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
	errs          []error
}

// The defaults, in one place.
const (
	DefaultConsecutiveFailures = 5
	DefaultOpenDuration        = 60 * time.Second
	DefaultHalfOpenProbes      = 1
)

func defaults() config {
	return config{
		consecutive:  DefaultConsecutiveFailures,
		openDuration: DefaultOpenDuration,
		probes:       DefaultHalfOpenProbes,
		classifier:   DefaultClassifier,
	}
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
}

func (c *config) validate(name string) error {
	if name == "" {
		c.fail("empty name")
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

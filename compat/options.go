package compat

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Defaults, in one place.
const (
	// DefaultMaxSize is the default input size cap in bytes (64 KiB).
	DefaultMaxSize = 64 << 10
	// DefaultLogLimit is the default number of log records of each kind
	// ("past sunset", "panicked") per version per DefaultLogInterval.
	DefaultLogLimit = 10
	// DefaultLogInterval is the default log budget interval.
	DefaultLogInterval = time.Minute
)

// Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name        string // "" means the type name of T
	maxSize     int
	reject      bool
	now         func() time.Time
	mp          metric.MeterProvider
	logger      *slog.Logger
	logLimit    int
	logInterval time.Duration
	errs        []error
}

func defaultConfig() config {
	return config{
		maxSize:     DefaultMaxSize,
		now:         time.Now,
		logLimit:    DefaultLogLimit,
		logInterval: DefaultLogInterval,
	}
}

func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
}

func (c *config) err() error { return errors.Join(c.errs...) }

// WithName names the decoder; the name is the compat.decoder attribute of
// its metrics, and appears in its errors and logs. The default is the type
// name of T (for example "auth.Claims"). An empty name is invalid.
func WithName(name string) Option {
	return optionFunc(func(c *config) {
		if name == "" {
			c.invalid("empty decoder name")
			return
		}
		c.name = name
	})
}

// WithMaxSize caps the input size in bytes; Decode returns an error matching
// ErrTooLarge for longer input, before any Match or Decode runs. The default
// is DefaultMaxSize (64 KiB). n must be positive.
func WithMaxSize(n int) Option {
	return optionFunc(func(c *config) {
		if n <= 0 {
			c.invalid("max size %d is not positive", n)
			return
		}
		c.maxSize = n
	})
}

// WithRejectAfterSunset makes the decoder refuse a version at or after its
// Sunset: that attempt fails with ErrSunset and the next candidate is tried.
// By default (false) such a version is accepted, Result.PastSunset is set,
// and a warning is logged within the log budget.
func WithRejectAfterSunset(reject bool) Option {
	return optionFunc(func(c *config) { c.reject = reject })
}

// WithClock sets the clock that sunsets are compared with, and that the log
// budget uses. The default is time.Now. A nil clock is invalid.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now == nil {
			c.invalid("nil clock")
			return
		}
		c.now = now
	})
}

// WithMeterProvider sets the OpenTelemetry meter provider. The default (and
// nil) is the otel global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithLogger sets the logger for "version past sunset" warnings and
// "version panicked" errors. The default (and nil) is slog.Default() as of
// the call to New. Records go through a log budget keyed by message and
// version (see WithLogBudget).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithLogBudget sets the log budget: at most limit records of each kind
// ("past sunset", "panicked") per version per interval, then one summary of
// how many were suppressed. The
// default is DefaultLogLimit per DefaultLogInterval. Both must be positive.
func WithLogBudget(limit int, interval time.Duration) Option {
	return optionFunc(func(c *config) {
		if limit <= 0 || interval <= 0 {
			c.invalid("log budget %d per %v is not positive", limit, interval)
			return
		}
		c.logLimit, c.logInterval = limit, interval
	})
}

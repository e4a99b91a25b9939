package compat

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// DefaultMaxSize is the default input size cap in bytes (64 KiB).
const DefaultMaxSize = 64 << 10

// Option configures New. A nil Option is skipped.
type Option interface{ apply(*config) error }

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	name    string // "" means the type name of T
	maxSize int
	reject  bool
	now     func() time.Time // nil means time.Now
	mp      metric.MeterProvider
	logger  *slog.Logger
}

// invalid returns an error wrapping ErrInvalidConfig.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// WithName names the decoder; the name is the compat.decoder attribute of
// its metrics, and appears in its errors and logs. The default is the type
// name of T (for example "auth.Claims"). An empty name is invalid.
func WithName(name string) Option {
	return optionFunc(func(c *config) error {
		if name == "" {
			return invalid(`WithName(""): empty name`)
		}
		c.name = name
		return nil
	})
}

// WithMaxSize caps the input size in bytes; Decode returns an error matching
// ErrTooLarge for longer input, before any Match or Decode runs. The default
// is DefaultMaxSize (64 KiB). n must be positive.
func WithMaxSize(n int) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 {
			return invalid("WithMaxSize(%d): must be positive", n)
		}
		c.maxSize = n
		return nil
	})
}

// WithRejectAfterSunset makes the decoder refuse a version at or after its
// Sunset: that attempt fails with ErrSunset and the next candidate is tried.
// By default (false) such a version is accepted, Result.PastSunset is set,
// and a warning is logged within the log budget.
func WithRejectAfterSunset(reject bool) Option {
	return optionFunc(func(c *config) error { c.reject = reject; return nil })
}

// WithClock sets the clock that versions' Sunsets are compared with and
// that VersionStats.LastSeen reads. Nil means the default, time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) error { c.now = now; return nil })
}

// WithMeterProvider sets the meter provider of the decoder's metric, and of
// the log budget it creates for itself (see WithLogger). Nil means the
// default, the otel global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) error { c.mp = mp; return nil })
}

// WithLogger sets the logger for "version past sunset accepted" warnings and
// "version panicked" errors. Nil means the default, slog.Default() as of
// the call to New.
//
// The decoder logs through a log budget: l's own if its handler is a
// *logbudget.Handler, so one budget and one suppression count can cover a
// whole service, otherwise a budget of its own over l with logbudget's
// defaults (10 records per key a minute). Each record carries the
// attribute reason="<decoder>/<version>", so that under a budget keyed by
// "reason" (as the decoder's own is) each version's warnings and each
// version's panics have a budget of their own.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error { c.logger = l; return nil })
}

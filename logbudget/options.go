package logbudget

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// ErrInvalidConfig is wrapped by the error New returns for an invalid
// option.
var ErrInvalidConfig = errors.New("logbudget: invalid config")

// Option configures New and For.
type Option interface {
	apply(*config) error
}

type option func(*config) error

func (f option) apply(c *config) error { return f(c) }

type config struct {
	limit    int
	interval time.Duration
	keyAttr  string
	maxKeys  int
	now      func() time.Time
	mp       metric.MeterProvider
}

// The defaults, in one place.
const (
	// DefaultLimit is the number of records passed per key per interval.
	DefaultLimit = 10
	// DefaultInterval is the budget interval.
	DefaultInterval = time.Minute
	// DefaultMaxKeys bounds the distinct keys tracked per interval.
	DefaultMaxKeys = 1024
)

func defaults() config {
	return config{limit: DefaultLimit, interval: DefaultInterval, maxKeys: DefaultMaxKeys}
}

// WithLimit sets the number of records passed per key per interval. Default
// DefaultLimit; n must be positive.
func WithLimit(n int) Option {
	return option(func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithLimit(%d): must be positive", ErrInvalidConfig, n)
		}
		c.limit = n
		return nil
	})
}

// WithInterval sets the budget interval. Default DefaultInterval; d must be
// positive.
func WithInterval(d time.Duration) Option {
	return option(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithInterval(%v): must be positive", ErrInvalidConfig, d)
		}
		c.interval = d
		return nil
	})
}

// WithKeyAttr names the attribute whose value joins the message to form the
// budget key, for example "reason". Default none: the message alone. Only a
// top-level attribute counts.
func WithKeyAttr(name string) Option {
	return option(func(c *config) error { c.keyAttr = name; return nil })
}

// WithMaxKeys bounds the distinct keys tracked per interval; records with
// further keys share one overflow budget, summarised as OverflowMessage.
// Default DefaultMaxKeys; n must be positive.
func WithMaxKeys(n int) Option {
	return option(func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithMaxKeys(%d): must be positive", ErrInvalidConfig, n)
		}
		c.maxKeys = n
		return nil
	})
}

// WithClock sets the clock that measures budget intervals and stamps
// summary records. Nil means the default: the monotonic clock.
func WithClock(now func() time.Time) Option {
	return option(func(c *config) error { c.now = now; return nil })
}

// WithMeterProvider sets the meter provider of the suppression counter
// (SuppressedMetric). Nil means the otel global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return option(func(c *config) error { c.mp = mp; return nil })
}

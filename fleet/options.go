package fleet

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// ErrInvalidConfig is wrapped by every error that New, NewGuard and
// NewPublisher return for an invalid argument or option, and by Handler's
// panic for a nil argument; the error names the option and its value, or
// the argument.
var ErrInvalidConfig = errors.New("fleet: invalid config")

// Defaults of New's options.
const (
	// DefaultHeartbeatInterval is how often an instance heartbeats when
	// nothing changes.
	DefaultHeartbeatInterval = 5 * time.Second
	// DefaultReconcileInterval is the mean period of the reconcile that
	// reads the store even without a notification. Each period is drawn
	// uniformly from 80% to 120% of it.
	DefaultReconcileInterval = 30 * time.Second
	// DefaultTimeout bounds each store call of a Syncer.
	DefaultTimeout = 2 * time.Second
)

// Option configures a Syncer in New.
type Option interface {
	apply(*config) error
}

type option func(*config) error

func (f option) apply(c *config) error { return f(c) }

// config holds every Syncer option; the defaults are set in New.
type config struct {
	id, host, build string
	heartbeat       time.Duration
	ttl             time.Duration
	reconcile       time.Duration
	staleAfter      time.Duration
	timeout         time.Duration
	cacheFile       string
	onApply         func(Instance)
	now             func() time.Time
	logger          *slog.Logger
	mp              metric.MeterProvider
}

// invalid returns an error wrapping ErrInvalidConfig that names the
// option and its value: "fleet: invalid config: WithTimeout(0s): must be
// positive".
func invalid(option string, value any, why string) error {
	return fmt.Errorf("%w: %s(%v): %s", ErrInvalidConfig, option, value, why)
}

func positive(option string, d time.Duration) error {
	if d <= 0 {
		return invalid(option, d, "must be positive")
	}
	return nil
}

// WithInstanceID sets the id the instance heartbeats under. The default is
// the host name and a random suffix, so a restarted process is a new
// instance.
func WithInstanceID(id string) Option {
	return option(func(c *config) error {
		if id == "" || len(id) > 256 {
			return invalid("WithInstanceID", fmt.Sprintf("%q", id), "must be 1 to 256 bytes")
		}
		c.id = id
		return nil
	})
}

// WithHost sets the host the instance reports. The default is os.Hostname.
func WithHost(host string) Option {
	return option(func(c *config) error { c.host = host; return nil })
}

// WithBuild sets the build the instance reports, such as a release tag or a
// commit. The default is the main module's version and VCS revision from
// the binary's build information.
func WithBuild(build string) Option {
	return option(func(c *config) error { c.build = build; return nil })
}

// WithHeartbeatInterval sets how often the instance heartbeats when nothing
// changes (it also heartbeats right after every apply). The default is
// DefaultHeartbeatInterval. It also sets the defaults of the heartbeat's TTL
// (3 intervals) and of the staleness bound (3 intervals).
func WithHeartbeatInterval(d time.Duration) Option {
	return option(func(c *config) error {
		if err := positive("WithHeartbeatInterval", d); err != nil {
			return err
		}
		c.heartbeat = d
		return nil
	})
}

// WithHeartbeatTTL sets how long a heartbeat keeps the instance live in
// the fleet view: an instance whose last heartbeat is older has vanished.
// It must exceed the heartbeat interval. The default is 3 intervals.
func WithHeartbeatTTL(d time.Duration) Option {
	return option(func(c *config) error {
		if err := positive("WithHeartbeatTTL", d); err != nil {
			return err
		}
		c.ttl = d
		return nil
	})
}

// WithReconcileInterval sets the mean period of the reconcile: a read of
// the store that does not wait for a notification, as a safety net for
// lost ones. The default is DefaultReconcileInterval.
func WithReconcileInterval(d time.Duration) Option {
	return option(func(c *config) error {
		if err := positive("WithReconcileInterval", d); err != nil {
			return err
		}
		c.reconcile = d
		return nil
	})
}

// WithStaleAfter sets the bound after which an instance that could not
// confirm its state is current (no successful read, and no heartbeat that
// showed the head it has applied) reports itself stale. The default is 3
// heartbeat intervals.
func WithStaleAfter(d time.Duration) Option {
	return option(func(c *config) error {
		if err := positive("WithStaleAfter", d); err != nil {
			return err
		}
		c.staleAfter = d
		return nil
	})
}

// WithTimeout bounds each store call (read, heartbeat). The default is
// DefaultTimeout. A driver may need its client configured to honor context
// deadlines for it to cut a hung call short.
func WithTimeout(d time.Duration) Option {
	return option(func(c *config) error {
		if err := positive("WithTimeout", d); err != nil {
			return err
		}
		c.timeout = d
		return nil
	})
}

// WithCacheFile makes the Syncer keep the last state it read from the
// store in the file at path (written atomically after every change), and
// boot from it when the store cannot be read at start-up. The instance then
// reports its source as "cache" until it reaches the store.
func WithCacheFile(path string) Option {
	return option(func(c *config) error {
		if path == "" {
			return invalid("WithCacheFile", `""`, "must not be empty")
		}
		c.cacheFile = path
		return nil
	})
}

// WithOnApply sets a function called, on the Syncer's goroutine, after
// every read that moved the applied head, with the instance's new status.
// It must not block. The default (and nil) is none.
func WithOnApply(f func(Instance)) Option {
	return option(func(c *config) error { c.onApply = f; return nil })
}

// WithClock sets the clock used for staleness, timestamps and latency.
// The default (and nil) is time.Now. Timers run on the time package.
func WithClock(now func() time.Time) Option {
	return option(func(c *config) error { c.now = now; return nil })
}

// WithLogger sets the logger. The default (and nil) is slog.Default() at
// construction. Repeated messages (applies, refusals, store errors) pass
// through a log budget: l's own if its handler is a *logbudget.Handler,
// otherwise one of the Syncer's own with logbudget's defaults (10 lines a
// minute per message and reason).
func WithLogger(l *slog.Logger) Option {
	return option(func(c *config) error { c.logger = l; return nil })
}

// WithMeterProvider sets the OpenTelemetry meter provider of the fleet's
// instruments and of its own log budget's suppression counter. The default
// (and nil) is the otel global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return option(func(c *config) error { c.mp = mp; return nil })
}

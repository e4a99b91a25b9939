package edge

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Middleware wraps an http.Handler.
type Middleware = func(http.Handler) http.Handler

// Chain composes mws into one Middleware. The first middleware in the list is
// the outermost: Chain(a, b)(h) is a(b(h)). Nil entries are skipped.
func Chain(mws ...Middleware) Middleware {
	mws = append([]Middleware(nil), mws...)
	return func(h http.Handler) http.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			if mws[i] != nil {
				h = mws[i](h)
			}
		}
		return h
	}
}

// ErrInvalidConfig is wrapped by the value a constructor panics with when
// given an invalid option. Auth, Recover, Shed and NewLogBudget have no error
// to return, so, like http.ServeMux.Handle, they panic at construction with
// an error naming the option and its value, for example
// "edge: invalid config: WithRate(NaN, 1): rate must be > 0". An invalid value
// never reaches a request.
var ErrInvalidConfig = errors.New("edge: invalid config")

// invalid panics with an error wrapping ErrInvalidConfig. Options call it
// while they are applied, that is, inside the constructor.
func invalid(format string, args ...any) {
	panic(fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
}

// common holds the settings shared by Auth, Recover, Shed and NewLogBudget.
type common struct {
	logger *slog.Logger
	budget *LogBudget
	mp     metric.MeterProvider
	now    func() time.Time
}

// budgetFor returns the log budget a middleware logs through: the shared one
// given with WithLogBudget, or a new budget over the logger (default
// slog.Default()) keyed by message and the "reason" attribute.
func (c *common) budgetFor() *LogBudget {
	if c.budget != nil {
		return c.budget
	}
	l := c.logger
	if l == nil {
		l = slog.Default()
	}
	opts := []LogBudgetOption{WithLogKeyAttr("reason"), WithMeterProvider(c.mp)}
	if c.now != nil {
		opts = append(opts, WithClock(c.now))
	}
	return NewLogBudget(l.Handler(), opts...)
}

// Option is an option shared by several constructors: Auth, Recover, Shed
// and NewLogBudget all accept it. Where a setting has no meaning (a logger
// or a log budget for NewLogBudget) it is ignored.
type Option interface {
	AuthOption
	RecoverOption
	ShedOption
	LogBudgetOption
}

type sharedOption func(*common)

func (o sharedOption) applyAuth(c *authConfig)       { o(&c.common) }
func (o sharedOption) applyRecover(c *recoverConfig) { o(&c.common) }
func (o sharedOption) applyShed(c *shedConfig)       { o(&c.common) }
func (o sharedOption) applyBudget(c *budgetConfig)   { o(&c.common) }

// WithLogger sets the logger that Auth, Recover and Shed write to, through a
// log budget of their own (10 records per message and reason per minute).
// Default slog.Default(). NewLogBudget ignores it.
func WithLogger(l *slog.Logger) Option {
	return sharedOption(func(c *common) {
		if l == nil {
			invalid("WithLogger(nil)")
			return
		}
		c.logger = l
	})
}

// WithLogBudget makes Auth, Recover and Shed log through b, so that several
// middlewares share one budget. It takes precedence over WithLogger.
// NewLogBudget ignores it.
func WithLogBudget(b *LogBudget) Option {
	return sharedOption(func(c *common) {
		if b == nil {
			invalid("WithLogBudget(nil)")
			return
		}
		c.budget = b
	})
}

// WithMeterProvider sets the OpenTelemetry meter provider. Default the otel
// global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return sharedOption(func(c *common) { c.mp = mp })
}

// WithClock sets the clock used by Shed's rate limiter and by log budgets:
// the one NewLogBudget creates, and the one Auth, Recover or Shed creates for
// itself. Default time.Now (budgets measure intervals on the monotonic
// clock).
func WithClock(now func() time.Time) Option {
	return sharedOption(func(c *common) {
		if now == nil {
			invalid("WithClock(nil)")
			return
		}
		c.now = now
	})
}

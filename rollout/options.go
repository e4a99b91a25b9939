package rollout

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/blastradius/blastradius/logbudget"
)

// ErrInvalidConfig is wrapped by every error that New, NewPath, Watch,
// Register, Retire and SetPercent return for an invalid option, argument
// or value, and by the value Handler panics with.
var ErrInvalidConfig = errors.New("rollout: invalid config")

// Option configures a Gate in New. A nil Option is skipped.
type Option interface {
	applyGate(*gateConfig) error
}

// RegistryOption configures a Registry in NewRegistry. A nil
// RegistryOption is skipped.
type RegistryOption interface {
	applyRegistry(*registryConfig) error
}

// SharedOption is an option that configures both a Gate and a Registry:
// WithClock, WithLogger and WithMeterProvider.
type SharedOption interface {
	Option
	RegistryOption
}

// Step is one step of a ramp schedule (WithSchedule): the gate is held at
// Percent for at least Hold before the schedule may promote it to the next
// step. The Hold of the last step is ignored: the last step is where the
// ramp ends. The zero value is a step at 0% with no hold.
type Step struct {
	Percent float64
	Hold    time.Duration
}

// PromotionCheck can veto a schedule promotion. It is called, without any
// lock of the gate held, with the index of the step the schedule is about to
// enter and the gate clock's time; it returns false and a reason to hold the
// gate at its current step. The schedule asks again on the next evaluation.
// It may run on a goroutine that called Enabled or Status, so it must be
// fast and must not block.
type PromotionCheck func(next int, now time.Time) (ok bool, reason string)

func (f PromotionCheck) allowPromotion(next int, now time.Time) (bool, string) {
	return f(next, now)
}

// promotionVeto is what the schedule consults before every promotion: a
// PromotionCheck or the guard.
type promotionVeto interface {
	allowPromotion(next int, now time.Time) (ok bool, reason string)
}

// gateConfig holds every Gate option. Its zero value is the default but
// for the salt, which is the gate's name.
type gateConfig struct {
	salt       string
	units      uint32
	percentSet bool
	schedule   []Step
	now        func() time.Time
	logger     *slog.Logger
	mp         metric.MeterProvider
	owner      string
	expires    time.Time
	vetoes     []promotionVeto
	// onBuild runs at the end of New with the finished gate, so a component
	// that an option created (the guard) can bind to its gate.
	onBuild []func(*Gate)
}

type registryConfig struct {
	now    func() time.Time
	logger *slog.Logger
	mp     metric.MeterProvider
}

type gateOption func(*gateConfig) error

func (f gateOption) applyGate(c *gateConfig) error { return f(c) }

type sharedOption struct {
	gate func(*gateConfig) error
	reg  func(*registryConfig) error
}

func (o sharedOption) applyGate(c *gateConfig) error         { return o.gate(c) }
func (o sharedOption) applyRegistry(c *registryConfig) error { return o.reg(c) }

// WithPercent sets the gate's initial percent, from 0 to 100 in steps of
// 0.0001. The default is 0. It cannot be combined with WithSchedule, whose
// first step sets the initial percent.
func WithPercent(p float64) Option {
	return gateOption(func(c *gateConfig) error {
		u, why := percentUnits(p)
		if why != "" {
			return &percentError{fmt.Sprintf("rollout: invalid config: WithPercent(%v): percent %s", p, why)}
		}
		c.units, c.percentSet = u, true
		return nil
	})
}

// WithSalt sets the salt that joins the key in the hash. It defaults to the
// gate's name. Gates with the same salt enable nested sets of keys; gates
// with different salts enable independent ones.
func WithSalt(salt string) Option {
	return gateOption(func(c *gateConfig) error {
		if salt == "" {
			return invalid(`WithSalt(""): must not be empty`)
		}
		c.salt = salt
		return nil
	})
}

// WithSchedule sets a ramp schedule. Percents must not decrease, and every
// step but the last needs a positive Hold.
//
// The first step starts when New returns. A step advances only after its
// Hold has passed, one step at a time, and only if every promotion check
// (WithPromotionCheck, the guard of WithGuard) allows it; the next step's
// Hold starts at the moment of promotion, so each step is held for at least
// its Hold however late the evaluation runs. No goroutine is started: the
// schedule is evaluated lazily, with the gate's clock, by
//
//   - Status, on every call (and so by the admin handler's GET);
//   - Registry.Watch, on every poll: with Watch running, a promotion lags
//     its due time by at most one poll interval;
//   - Enabled, on a random sample of about one call in 256 while a
//     promotion is pending. Enabled never reads the clock otherwise. The
//     sample uses the runtime's per-thread random source, so it adds no
//     shared write. The chance that n Enabled calls after the due time all
//     skip the check is (255/256)ⁿ, for example 0.04% for n = 2,000.
//
// A gate that sees few Enabled calls and no Watch should have Status called
// periodically. SetPercent stops the schedule (an operator's setting wins);
// Kill freezes it; Resume restarts the current step's Hold.
func WithSchedule(steps ...Step) Option {
	steps = append([]Step(nil), steps...)
	return gateOption(func(c *gateConfig) error {
		if len(steps) == 0 {
			return invalid("WithSchedule(): needs a step")
		}
		for i, s := range steps {
			if _, why := percentUnits(s.Percent); why != "" {
				return &percentError{fmt.Sprintf("rollout: invalid config: WithSchedule step %d: Percent %v %s", i, s.Percent, why)}
			}
			if i > 0 && s.Percent < steps[i-1].Percent {
				return invalid("WithSchedule step %d: Percent %v is below the previous step's %v", i, s.Percent, steps[i-1].Percent)
			}
			if i < len(steps)-1 && s.Hold <= 0 {
				return invalid("WithSchedule step %d: Hold %v must be positive", i, s.Hold)
			}
		}
		c.schedule = steps
		return nil
	})
}

// WithPromotionCheck adds a check that can veto every promotion of the
// schedule. All checks must allow a promotion. Status reports the reason of
// the last veto.
func WithPromotionCheck(check PromotionCheck) Option {
	return gateOption(func(c *gateConfig) error {
		if check == nil {
			return invalid("WithPromotionCheck(nil): needs a function")
		}
		c.vetoes = append(c.vetoes, check)
		return nil
	})
}

// WithOwner records who owns the gate, for Status and the admin handler.
func WithOwner(owner string) Option {
	return gateOption(func(c *gateConfig) error {
		c.owner = owner
		return nil
	})
}

// WithExpiry sets the date after which the gate should have been removed
// from the code: from then on Status reports it as stale and the gate logs a
// warning once. The zero time means no expiry.
func WithExpiry(t time.Time) Option {
	return gateOption(func(c *gateConfig) error {
		c.expires = t
		return nil
	})
}

// WithClock sets the clock of the schedule, of Status times and of the log
// budget. Nil means the default, time.Now.
func WithClock(now func() time.Time) SharedOption {
	return sharedOption{
		gate: func(c *gateConfig) error { c.now = now; return nil },
		reg:  func(c *registryConfig) error { c.now = now; return nil },
	}
}

// WithLogger sets the logger. Nil means the default, slog.Default() at
// construction. If its handler is a *logbudget.Handler, repeated messages
// (shadow mismatches, panics of an arm, held promotions, rejected configs,
// admin requests) go through that budget, which may be shared with other
// packages; otherwise through a budget of their own, per gate and per
// registry, with logbudget's defaults (10 a minute per message and reason)
// on the gate's clock, counting what it suppresses in
// blastradius.logbudget.suppressed. State changes (kill, resume, percent,
// promotion, config applied) are logged to the logger as they are.
func WithLogger(l *slog.Logger) SharedOption {
	return sharedOption{
		gate: func(c *gateConfig) error { c.logger = l; return nil },
		reg:  func(c *registryConfig) error { c.logger = l; return nil },
	}
}

// WithMeterProvider sets the OpenTelemetry meter provider. Nil means the
// default, the otel global provider.
func WithMeterProvider(mp metric.MeterProvider) SharedOption {
	return sharedOption{
		gate: func(c *gateConfig) error { c.mp = mp; return nil },
		reg:  func(c *registryConfig) error { c.mp = mp; return nil },
	}
}

// logBudget returns the log budget of l (slog.Default() if nil): l's own if
// its handler is a *logbudget.Handler, otherwise a new one over it with
// logbudget's defaults, keyed by message and reason, counting suppressions
// through mp and timed by now (nil: the monotonic clock).
func logBudget(l *slog.Logger, mp metric.MeterProvider, now func() time.Time) *logbudget.Handler {
	// The options are valid, so For cannot fail.
	h, _ := logbudget.For(l, logbudget.WithKeyAttr(attrReason), logbudget.WithMeterProvider(mp), logbudget.WithClock(now))
	return h
}

// invalid returns an error wrapping ErrInvalidConfig:
// "rollout: invalid config: " and the formatted message, which names the
// option and the value.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// percentError reports an invalid percent. It matches both
// ErrInvalidConfig and ErrOutOfRange.
type percentError struct{ msg string }

func (e *percentError) Error() string { return e.msg }

// Is reports whether target is ErrInvalidConfig or ErrOutOfRange.
func (e *percentError) Is(target error) bool {
	return target == ErrInvalidConfig || target == ErrOutOfRange
}

// percentUnits converts a percent to units of 0.0001%. It rejects NaN,
// infinities, values outside [0, 100] and values that are not a whole
// number of units, rather than rounding them silently: why says how, and
// is empty for a valid percent.
func percentUnits(p float64) (units uint32, why string) {
	if math.IsNaN(p) || p < 0 || p > 100 {
		return 0, "is outside [0, 100]"
	}
	u := p * 1e4
	r := math.Round(u)
	if math.Abs(u-r) > 1e-6 {
		return 0, "is not a multiple of 0.0001"
	}
	return uint32(r), ""
}

// checkPercent is percentUnits with the error of SetPercent, the admin
// handler and a config document.
func checkPercent(p float64) (uint32, error) {
	u, why := percentUnits(p)
	if why != "" {
		return 0, &percentError{fmt.Sprintf("rollout: percent %v %s", p, why)}
	}
	return u, nil
}

// CheckPercent returns the error SetPercent would return for p, nil if a
// gate accepts it: a finite percent from 0 to 100, in steps of 0.0001. A
// tool that sends a percent to gates elsewhere (an admin form, a fleet
// publisher) checks it here first. Its error matches ErrInvalidConfig and
// ErrOutOfRange.
func CheckPercent(p float64) error {
	_, err := checkPercent(p)
	return err
}

func unitsPercent(u uint32) float64 { return float64(u) / 1e4 }

package rollout_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

// TestInvalidOptions: every invalid option, and every invalid field of
// Arms, fails at construction with an error wrapping ErrInvalidConfig that
// names the option and the value.
// NewRegistry has no invalid option: its clock, logger and meter provider
// accept nil as the default.
func TestInvalidOptions(t *testing.T) {
	newGate := func(opts ...rollout.Option) func() error {
		return func() error {
			g, err := rollout.New("g", opts...)
			if err == nil || g != nil {
				return errors.New("accepted")
			}
			return err
		}
	}
	guard := func(opts ...rollout.GuardOption) func() error { return newGate(rollout.WithGuard(opts...)) }
	watch := func(opts ...rollout.WatchOption) func() error {
		return func() error {
			reg, _ := rollout.NewRegistry()
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a valid Watch returns ctx.Err() after its first poll
			err := reg.Watch(ctx, filepath.Join(os.TempDir(), "rollout-none.json"), opts...)
			if errors.Is(err, context.Canceled) {
				return errors.New("accepted")
			}
			return err
		}
	}
	hour := time.Hour
	gate, _ := rollout.New("g")
	newPath := func(g *rollout.Gate, arms rollout.Arms[string, int]) func() error {
		return func() error {
			p, err := rollout.NewPath(g, arms)
			if err == nil || p != nil {
				return errors.New("accepted")
			}
			return err
		}
	}
	for _, c := range []struct {
		name string
		try  func() error
		want string // the option and its value, as the error names them
	}{
		{"New empty name", func() error { _, err := rollout.New(""); return err }, `New(""): gate name`},
		{"New name with slash", func() error { _, err := rollout.New("a/b"); return err }, `New("a/b"): gate name`},
		{"WithPercent(-1)", newGate(rollout.WithPercent(-1)), "WithPercent(-1): percent is outside [0, 100]"},
		{"WithPercent(100.0001)", newGate(rollout.WithPercent(100.0001)), "WithPercent(100.0001): percent is outside [0, 100]"},
		{"WithPercent(NaN)", newGate(rollout.WithPercent(math.NaN())), "WithPercent(NaN)"},
		{"WithPercent(+Inf)", newGate(rollout.WithPercent(math.Inf(1))), "WithPercent(+Inf)"},
		{"WithPercent(0.00005)", newGate(rollout.WithPercent(0.00005)), "WithPercent(5e-05): percent is not a multiple of 0.0001"},
		{"WithSalt(\"\")", newGate(rollout.WithSalt("")), `WithSalt(""): must not be empty`},
		{"WithSchedule()", newGate(rollout.WithSchedule()), "WithSchedule(): needs a step"},
		{"WithSchedule decreasing", newGate(rollout.WithSchedule(rollout.Step{Percent: 5, Hold: hour}, rollout.Step{Percent: 1})),
			"WithSchedule step 1: Percent 1 is below the previous step's 5"},
		{"WithSchedule without hold", newGate(rollout.WithSchedule(rollout.Step{Percent: 1}, rollout.Step{Percent: 5})),
			"WithSchedule step 0: Hold 0s must be positive"},
		{"WithSchedule percent out of range", newGate(rollout.WithSchedule(rollout.Step{Percent: 1, Hold: hour}, rollout.Step{Percent: 101})),
			"WithSchedule step 1: Percent 101 is outside [0, 100]"},
		{"WithPercent and WithSchedule", newGate(rollout.WithPercent(1), rollout.WithSchedule(rollout.Step{Percent: 1})),
			"WithPercent and WithSchedule: give one"},
		{"WithPromotionCheck(nil)", newGate(rollout.WithPromotionCheck(nil)), "WithPromotionCheck(nil)"},
		{"WithGuard twice", newGate(rollout.WithGuard(), rollout.WithGuard()), "WithGuard: given twice"},
		{"WithConfidence(1)", guard(rollout.WithConfidence(1)), "WithConfidence(1): must be in (0.5, 1)"},
		{"WithConfidence(0.5)", guard(rollout.WithConfidence(0.5)), "WithConfidence(0.5): must be in (0.5, 1)"},
		{"WithConfidence(NaN)", guard(rollout.WithConfidence(math.NaN())), "WithConfidence(NaN)"},
		{"WithMinSamples(0)", guard(rollout.WithMinSamples(0)), "WithMinSamples(0): must be at least 1"},
		{"WithCheckEvery(0)", guard(rollout.WithCheckEvery(0)), "WithCheckEvery(0): must be at least 1"},
		{"WithWindow(0)", guard(rollout.WithWindow(0)), "WithWindow(0): must be at least 1"},
		{"WithWindow not a multiple", guard(rollout.WithCheckEvery(300), rollout.WithWindow(1000)),
			"WithWindow(1000): must be a multiple of WithCheckEvery(300)"},
		{"WithMaxPanics(-1)", guard(rollout.WithMaxPanics(-1)), "WithMaxPanics(-1): must not be negative"},
		{"WithMaxMismatchRatio(1.5)", guard(rollout.WithMaxMismatchRatio(1.5)), "WithMaxMismatchRatio(1.5): must be in [0, 1]"},
		{"WithMaxMismatchRatio(NaN)", guard(rollout.WithMaxMismatchRatio(math.NaN())), "WithMaxMismatchRatio(NaN)"},
		{"WithPollInterval(0)", watch(rollout.WithPollInterval(0)), "WithPollInterval(0s): must be positive"},
		{"WithPollInterval(-1s)", watch(rollout.WithPollInterval(-time.Second)), "WithPollInterval(-1s): must be positive"},
		{"WithOnReload(nil)", watch(rollout.WithOnReload(nil)), "WithOnReload(nil)"},
		{"NewPath nil gate", newPath(nil, rollout.Arms[string, int]{Old: intArm, New: intArm}), "NewPath: nil gate"},
		{"Arms.Old nil", newPath(gate, rollout.Arms[string, int]{New: intArm}), "Arms.Old: nil"},
		{"Arms.New nil", newPath(gate, rollout.Arms[string, int]{Old: intArm}), "Arms.New: nil"},
		{"Arms.Timeout -1s", newPath(gate, rollout.Arms[string, int]{Old: intArm, New: intArm, Timeout: -time.Second}),
			"Arms.Timeout = -1s: must not be negative"},
		{"Arms.MaxConcurrent -1", newPath(gate, rollout.Arms[string, int]{Old: intArm, New: intArm, MaxConcurrent: -1}),
			"Arms.MaxConcurrent = -1: must not be negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.try()
			if !errors.Is(err, rollout.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			if want := "rollout: invalid config: " + c.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("err = %q\nwant it to start %q", err, want)
			}
		})
	}
}

// TestNilMeansDefault: a nil clock, logger, meter provider or option is the
// default, not an error.
func TestNilMeansDefault(t *testing.T) {
	g, err := rollout.New("g", nil, rollout.WithClock(nil), rollout.WithLogger(nil), rollout.WithMeterProvider(nil),
		rollout.WithGuard(nil), rollout.WithSchedule(rollout.Step{Percent: 1, Hold: time.Hour}, rollout.Step{Percent: 2}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// The real clock: the first step started when New returned.
	if next := g.Status().NextStepAt; next.Before(time.Now().Add(59*time.Minute)) || next.After(time.Now().Add(time.Hour)) {
		t.Errorf("NextStepAt %v, want an hour from now", next)
	}
	reg, err := rollout.NewRegistry(nil, rollout.WithClock(nil), rollout.WithLogger(nil), rollout.WithMeterProvider(nil))
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	if err := reg.Register(g); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.LoadConfig(strings.NewReader(`{"version":"1","gates":[{"name":"g","percent":3}]}`)); err != nil {
		t.Fatal(err)
	}
	if applied := reg.Config().Applied; time.Since(applied) > time.Minute || applied.After(time.Now()) {
		t.Errorf("Applied %v by the real clock, want about now", applied)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := reg.Watch(ctx, filepath.Join(t.TempDir(), "none.json"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch with a nil option: %v", err)
	}
}

// TestHandlerPanicsWithoutArguments: there is no unauthenticated mode, and a
// handler without a registry or an authorize func is refused at
// construction, with a panic naming the argument, not at every request.
func TestHandlerPanicsWithoutArguments(t *testing.T) {
	reg := newTestRegistry(t)
	for _, c := range []struct {
		name      string
		reg       *rollout.Registry
		authorize func(*http.Request) bool
		want      string
	}{
		{"nil authorize", reg, nil, "rollout: invalid config: Handler: nil authorize func"},
		{"nil registry", nil, authorize, "rollout: invalid config: Handler: nil registry"},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, rollout.ErrInvalidConfig) || !strings.HasPrefix(err.Error(), c.want) {
					t.Errorf("panic %v, want an error starting %q", err, c.want)
				}
			}()
			rollout.Handler(c.reg, c.authorize)
		})
	}
}

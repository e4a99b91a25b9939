package rollout_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/rollout"
)

func TestNewValid(t *testing.T) {
	for _, p := range []float64{0, 0.0001, 0.0003, 1.2345, 12.5, 33.3333, 99.9999, 100} {
		g, err := rollout.New("g.ok_name-1", rollout.WithPercent(p))
		if err != nil {
			t.Fatalf("WithPercent(%v): %v", p, err)
		}
		if got := g.Status().Percent; got != p {
			t.Errorf("WithPercent(%v): Status().Percent = %v", p, got)
		}
	}
	g, _ := rollout.New("plain")
	if st := g.Status(); st.Percent != 0 || st.Killed || st.Step != -1 || st.Scheduled || st.Stale || st.Name != "plain" {
		t.Errorf("default status = %+v", st)
	}
	if g.Enabled("anyone") {
		t.Error("a new gate without a percent enabled a key")
	}
}

func TestSetPercent(t *testing.T) {
	g, _ := rollout.New("g", rollout.WithPercent(5))
	for _, p := range []float64{-0.0001, 100.5, math.NaN(), math.Inf(-1), 1.00001} {
		err := g.SetPercent(p)
		if !errors.Is(err, rollout.ErrInvalidConfig) || !errors.Is(err, rollout.ErrOutOfRange) {
			t.Errorf("SetPercent(%v) = %v, want ErrInvalidConfig and ErrOutOfRange", p, err)
		}
	}
	if got := g.Status().Percent; got != 5 {
		t.Fatalf("a rejected SetPercent changed the percent to %v", got)
	}
	if err := g.SetPercent(100); err != nil {
		t.Fatal(err)
	}
	if !g.Enabled("x") || g.Status().Percent != 100 {
		t.Fatal("SetPercent(100) did not enable every key")
	}
}

func TestKillResume(t *testing.T) {
	clk := fakeclock.New()
	g, _ := rollout.New("g", rollout.WithPercent(100), rollout.WithClock(clk.Now))
	g.Kill("INC-1: payments failing")
	if g.Enabled("x") {
		t.Fatal("killed gate enabled a key")
	}
	want := rollout.Status{Name: "g", Percent: 100, Killed: true, Reason: "INC-1: payments failing",
		KilledBy: rollout.KilledByCall, KilledAt: clk.Now(), Step: -1, Salt: "g"}
	if st := g.Status(); st != want {
		t.Fatalf("status = %+v\nwant     %+v", st, want)
	}
	clk.Advance(time.Minute)
	g.Kill("second reason")
	if st := g.Status(); st.Reason != "INC-1: payments failing" || !st.KilledAt.Equal(want.KilledAt) {
		t.Errorf("a second Kill changed the kill: %+v", st)
	}
	if err := g.SetPercent(50); err != nil {
		t.Fatal(err)
	}
	if g.Enabled("user-1") || g.Enabled("user-2") {
		t.Fatal("SetPercent on a killed gate revived it")
	}
	g.Resume()
	st := g.Status()
	if st.Killed || st.Reason != "" || st.KilledBy != "" || st.Percent != 50 {
		t.Fatalf("after Resume: %+v", st)
	}
	// Resumed at 50%: exactly the keys whose bucket is below 500,000.
	for i := range 100 {
		k := fmt.Sprint("user-", i)
		if want := rollout.Bucket("g", k) < 500_000; g.Enabled(k) != want {
			t.Fatalf("after Resume, Enabled(%q) = %v, want %v", k, !want, want)
		}
	}
	g.Resume() // a no-op
	if g.Status().Killed {
		t.Fatal("Resume of a live gate killed it")
	}
}

// TestKillIsImmediate is the I4 test: 8 goroutines call Enabled in a loop
// while Kill is called; no call that starts after Kill returns may return
// true.
func TestKillIsImmediate(t *testing.T) {
	for _, percent := range []float64{100, 50} {
		t.Run(fmt.Sprint(percent), func(t *testing.T) {
			g, _ := rollout.New("i4", rollout.WithPercent(percent))
			// Keys enabled before the kill.
			var keys []string
			for i := 0; len(keys) < 64; i++ {
				if k := fmt.Sprint("user-", i); g.Enabled(k) {
					keys = append(keys, k)
				}
			}
			var (
				killReturned atomic.Bool
				stop         atomic.Bool
				violations   atomic.Int64
				after        atomic.Int64
				wg           sync.WaitGroup
				started      sync.WaitGroup
			)
			for w := range 8 {
				wg.Add(1)
				started.Add(1)
				go func() {
					defer wg.Done()
					started.Done()
					for i := w; !stop.Load(); i++ {
						// Read before the call starts: if Kill had returned
						// by then, the call must see it.
						startedAfterKill := killReturned.Load()
						on := g.Enabled(keys[i%len(keys)])
						if startedAfterKill {
							after.Add(1)
							if on {
								violations.Add(1)
							}
						}
					}
				}()
			}
			started.Wait()
			for i := 0; i < 1000; i++ {
				_ = g.Enabled(keys[0]) // let the workers run a while
			}
			g.Kill("I4")
			killReturned.Store(true)
			for after.Load() < 80_000 {
				_ = g.Enabled(keys[0])
			}
			stop.Store(true)
			wg.Wait()
			if n := violations.Load(); n != 0 {
				t.Fatalf("%d calls that started after Kill returned returned true", n)
			}
			t.Logf("%d calls after the kill, all false", after.Load())
		})
	}
}

func TestEnabledDoesNotAllocate(t *testing.T) {
	clk := fakeclock.New()
	steady, _ := rollout.New("steady", rollout.WithPercent(12.5))
	ramping, _ := rollout.New("ramping", rollout.WithClock(clk.Now), rollout.WithSchedule(
		rollout.Step{Percent: 1, Hold: time.Hour}, rollout.Step{Percent: 100}))
	killed, _ := rollout.New("killed", rollout.WithPercent(100))
	killed.Kill("x")
	long := strings.Repeat("k", 300)
	for _, g := range []*rollout.Gate{steady, ramping, killed} {
		for _, key := range []string{"user-12345", "", long} {
			if n := testing.AllocsPerRun(1000, func() { _ = g.Enabled(key) }); n != 0 {
				t.Errorf("%s: Enabled(%d-byte key) allocates %v per call", g.Name(), len(key), n)
			}
		}
	}
}

func TestStale(t *testing.T) {
	clk := fakeclock.New()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	expiry := clk.Now().Add(24 * time.Hour)
	g, _ := rollout.New("old-flag", rollout.WithClock(clk.Now), rollout.WithLogger(logger),
		rollout.WithOwner("payments-team"), rollout.WithExpiry(expiry))
	st := g.Status()
	if st.Stale || st.Owner != "payments-team" || !st.Expires.Equal(expiry) {
		t.Fatalf("before expiry: %+v", st)
	}
	clk.Advance(24 * time.Hour)
	for range 3 {
		if !g.Status().Stale {
			t.Fatal("not stale at expiry")
		}
	}
	if n := strings.Count(buf.String(), "past its expiry"); n != 1 {
		t.Errorf("stale warning logged %d times, want once:\n%s", n, buf.String())
	}
}

func TestMetrics(t *testing.T) {
	r := metrictest.New(t)
	a, _ := rollout.New("checkout-v2", rollout.WithPercent(12.5), rollout.WithMeterProvider(r))
	_, _ = rollout.New("search-v3", rollout.WithPercent(1), rollout.WithMeterProvider(r))
	a.Kill("one")
	a.Kill("ignored: already killed")
	a.Resume()
	a.Kill("two")

	for _, sm := range r.Collect().ScopeMetrics {
		if sm.Scope.Name != "github.com/blastradius/blastradius/rollout" {
			t.Errorf("scope %q", sm.Scope.Name)
		}
	}
	for gate, want := range map[string]float64{"checkout-v2": 0 /* killed */, "search-v3": 1} {
		if got, ok := r.Gauge("blastradius.rollout.percent", "feature_flag.key", gate); !ok || got != want {
			t.Errorf("percent gauge of %s = %v (%v), want %v", gate, got, ok, want)
		}
	}
	kills := r.Sums("blastradius.rollout.kills")
	want := map[attribute.Set]int64{metrictest.Attrs("feature_flag.key", "checkout-v2", "reason", "call"): 2}
	if fmt.Sprint(kills) != fmt.Sprint(want) {
		t.Errorf("kills = %v, want %v", kills, want)
	}

	a.Resume()
	if got, _ := r.Gauge("blastradius.rollout.percent", "feature_flag.key", "checkout-v2"); got != 12.5 {
		t.Errorf("after Resume the gauge reads %v, want 12.5", got)
	}
}

// TestCheckPercent: CheckPercent accepts exactly what SetPercent accepts,
// with the same error.
func TestCheckPercent(t *testing.T) {
	g, err := rollout.New("check-percent")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []float64{0, 0.0001, 12.5, 100, -0.0001, 100.0001, 0.00001, math.NaN(), math.Inf(1), math.Inf(-1)} {
		want := g.SetPercent(p)
		got := rollout.CheckPercent(p)
		if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
			t.Errorf("CheckPercent(%v) = %v, SetPercent: %v", p, got, want)
		}
		if got != nil && !(errors.Is(got, rollout.ErrInvalidConfig) && errors.Is(got, rollout.ErrOutOfRange)) {
			t.Errorf("CheckPercent(%v) = %v, want ErrInvalidConfig and ErrOutOfRange", p, got)
		}
	}
}

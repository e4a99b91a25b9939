package rollout_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/rollout"
)

// record is rollout.Record with the common arguments spelled out.
func record(g *rollout.Gate, variant, outcome string, n int64) {
	rollout.Record(g, variant, outcome, false, n)
}

func TestGuardReasonStatesTheNumbers(t *testing.T) {
	mp, read := meter(t)
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(50), mp, rollout.WithGuard())
	record(g, "old", "ok", 998)
	record(g, "old", "error", 2)
	record(g, "new", "error", 41)
	record(g, "new", "ok", 959) // the checkpoint at 1,000 calls of the new arm

	st := g.Status()
	const want = "new 4.1% failures (41/1000) vs old 0.20% (2/1000), z=6.0 (limit 2.88 at look 1; Fisher p=7.4e-11)"
	if !st.Killed || st.KilledBy != rollout.KilledByGuard || st.Reason != want {
		t.Fatalf("status: killed %v by %q, reason\n%q, want\n%q", st.Killed, st.KilledBy, st.Reason, want)
	}
	gs, ok := g.Guard()
	if !ok || gs.Tripped != want || gs.Looks != 1 || gs.New.Calls != 1000 || gs.New.Failures != 41 ||
		gs.Old.Failures != 2 || math.Abs(gs.Z-6.01) > 0.01 || math.Abs(gs.Critical-2.878) > 0.001 {
		t.Errorf("guard status %+v", gs)
	}
	if got := read()["kills guard"]; got != 1 {
		t.Errorf("kills{reason=guard} = %d, want 1", got)
	}
	if g.Enabled("anyone") {
		t.Error("killed gate enables a key")
	}
}

func TestGuardAbsoluteLimits(t *testing.T) {
	t.Run("panic", func(t *testing.T) {
		g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), rollout.WithGuard())
		ok := path(t, g, rollout.Arms[string, *account]{Old: okArm("a"), New: okArm("a")})
		for range 37 {
			_, _ = ok.Run(context.Background(), "u", "u")
		}
		_, _ = path(t, g, rollout.Arms[string, *account]{Old: okArm("a"), New: armBehaviours["panic"]}).Run(context.Background(), "u", "u")
		st := g.Status()
		if want := "new arm panics: 1 in 38 calls (limit 1)"; !st.Killed || st.Reason != want {
			t.Errorf("killed %v, reason %q, want %q", st.Killed, st.Reason, want)
		}
	})
	t.Run("panic limit off", func(t *testing.T) {
		g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), rollout.WithGuard(rollout.WithMaxPanics(0)))
		_, _ = path(t, g, rollout.Arms[string, *account]{Old: okArm("a"), New: armBehaviours["panic"]}).Run(context.Background(), "u", "u")
		if g.Status().Killed {
			t.Error("killed with the panic limit off")
		}
	})
	t.Run("mismatch ratio", func(t *testing.T) {
		g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), rollout.WithGuard())
		record(g, "new", "ok", 480)
		for range 20 {
			rollout.Record(g, "new", "ok", true, 1) // 4.0% at 500: under the limit
		}
		if st := g.Status(); st.Killed {
			t.Fatalf("killed at 4%% mismatches: %s", st.Reason)
		}
		for range 10 {
			rollout.Record(g, "new", "ok", true, 1) // trips at 26/506 = 5.1%
		}
		st := g.Status()
		if want := "new 5.1% mismatches (26/506), limit 5.0%"; !st.Killed || st.Reason != want {
			t.Errorf("killed %v, reason %q, want %q", st.Killed, st.Reason, want)
		}
	})
}

// TestGuardLooksWhenTheOldArmCatchesUp: at the checkpoint of 500 new-arm
// calls the old arm has only 480, so the look waits; it happens as soon as
// the old arm has its 500, not at the next checkpoint 500 calls later.
func TestGuardLooksWhenTheOldArmCatchesUp(t *testing.T) {
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(50), rollout.WithGuard())
	record(g, "old", "ok", 480)
	record(g, "new", "error", 50)
	record(g, "new", "ok", 450) // the checkpoint: old arm short
	if gs, _ := g.Guard(); gs.Looks != 0 || g.Status().Killed {
		t.Fatalf("looked with the old arm short: %+v", gs)
	}
	record(g, "old", "ok", 20)
	for range 21 { // 500/480 new-arm calls per old-arm call: back after 21
		record(g, "new", "ok", 1)
	}
	st := g.Status()
	gs, _ := g.Guard()
	if !st.Killed || gs.Looks != 1 || !strings.HasPrefix(st.Reason, "new 9.6% failures (50/521) vs old 0.0% (0/500), z=") {
		t.Fatalf("killed %v after %d looks, reason %q", st.Killed, gs.Looks, st.Reason)
	}
}

func TestGuardVetoesPromotion(t *testing.T) {
	clock := fakeclock.New()
	g, _ := rollout.New("lookup-v2", rollout.WithClock(clock.Now), rollout.WithGuard(),
		rollout.WithSchedule(rollout.Step{Percent: 1, Hold: time.Hour}, rollout.Step{Percent: 5, Hold: time.Hour}, rollout.Step{Percent: 100}))
	record(g, "old", "ok", 9980)
	record(g, "old", "error", 20)
	record(g, "new", "ok", 100)
	clock.Advance(2 * time.Hour)
	if st := g.Status(); st.Step != 0 || st.Held != "guard: under-sampled: new arm has 100 of 500 calls since the last promotion" {
		t.Fatalf("step %d, held %q", st.Step, st.Held)
	}
	// 5 failures in 500 against 0.2%: z = 3.6 is above the hold line
	// (2.33) but the first look's limit is 3.24 and Fisher's p = 0.008 is
	// not small enough to kill.
	record(g, "new", "error", 5)
	record(g, "new", "ok", 395)
	st := g.Status()
	if st.Killed || st.Step != 0 || !strings.HasPrefix(st.Held, "guard: unhealthy: new 1.0% failures (5/500) vs old 0.20% (20/10000), z=3.6") {
		t.Fatalf("killed %v (%s), step %d, held %q", st.Killed, st.Reason, st.Step, st.Held)
	}
	// Healthy traffic dilutes the window; the hold lifts.
	record(g, "new", "ok", 3000)
	record(g, "old", "ok", 20000)
	if st := g.Status(); st.Step != 1 || st.Percent != 5 || st.Held != "" {
		t.Fatalf("step %d at %v%%, held %q", st.Step, st.Percent, st.Held)
	}
	// The next step needs its own samples.
	clock.Advance(2 * time.Hour)
	if st := g.Status(); st.Step != 1 || !strings.Contains(st.Held, "new arm has 0 of 500 calls") {
		t.Fatalf("step %d, held %q", st.Step, st.Held)
	}
}

func TestGuardResumeStartsAFreshTest(t *testing.T) {
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(50), rollout.WithGuard())
	record(g, "old", "ok", 1000)
	record(g, "new", "error", 100)
	record(g, "new", "ok", 400)
	if !g.Status().Killed {
		t.Fatal("not killed at 20% failures")
	}
	g.Resume()
	gs, _ := g.Guard()
	if g.Status().Killed || gs.Tripped != "" || gs.Looks != 0 || gs.New.Calls != 0 {
		t.Fatalf("after Resume: %+v", gs)
	}
	record(g, "old", "ok", 1000)
	record(g, "new", "ok", 500)
	if st := g.Status(); st.Killed {
		t.Fatalf("killed again on healthy data: %s", st.Reason)
	}
}

// TestWithGuardOptions: valid guard options give the gate a guard; a
// gate without WithGuard has none. TestInvalidOptions has the invalid ones.
func TestWithGuardOptions(t *testing.T) {
	g, err := rollout.New("lookup-v2", rollout.WithGuard(rollout.WithConfidence(0.95), rollout.WithMinSamples(100),
		rollout.WithCheckEvery(100), rollout.WithWindow(1000), rollout.WithMaxPanics(3), rollout.WithMaxMismatchRatio(0)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Guard(); !ok {
		t.Error("no guard")
	}
	plain, _ := rollout.New("lookup-v2")
	if _, ok := plain.Guard(); ok {
		t.Error("guard on a gate without WithGuard")
	}
}

// A guard's options are applied per New: one option value used for two
// gates gives each its own guard.
func TestWithGuardPerGate(t *testing.T) {
	opt := rollout.WithGuard()
	a, _ := rollout.New("a", rollout.WithPercent(50), opt)
	b, _ := rollout.New("b", rollout.WithPercent(50), opt)
	record(a, "old", "ok", 1000)
	record(a, "new", "error", 500)
	if !a.Status().Killed || b.Status().Killed {
		t.Errorf("a killed %v, b killed %v; want only a", a.Status().Killed, b.Status().Killed)
	}
}

package rollout_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/rollout"
)

var ramp = []rollout.Step{
	{Percent: 1, Hold: time.Hour},
	{Percent: 5, Hold: 2 * time.Hour},
	{Percent: 100},
}

func TestSchedulePromotes(t *testing.T) {
	clk := fakeclock.New()
	t0 := clk.Now()
	g, err := rollout.New("ramp", rollout.WithClock(clk.Now), rollout.WithSchedule(ramp...))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		percent   float64
		step      int
		scheduled bool
		next      time.Time
	}
	check := func(label string, w want) {
		t.Helper()
		st := g.Status()
		if st.Percent != w.percent || st.Step != w.step || st.Steps != 3 || st.Scheduled != w.scheduled || !st.NextStepAt.Equal(w.next) {
			t.Fatalf("%s: status %+v, want %+v", label, st, w)
		}
	}
	check("start", want{1, 0, true, t0.Add(time.Hour)})
	clk.Advance(time.Hour - time.Nanosecond)
	check("just before the hold ends", want{1, 0, true, t0.Add(time.Hour)})
	clk.Advance(time.Nanosecond)
	check("hold ended", want{5, 1, true, t0.Add(3 * time.Hour)})
	clk.Advance(2 * time.Hour)
	check("second hold ended", want{100, 2, false, time.Time{}})
	clk.Advance(100 * time.Hour)
	check("last step stays", want{100, 2, false, time.Time{}})
}

// TestScheduleOneStepAtATime: however late the evaluation, the gate moves
// one step, and the next step's hold starts at the promotion.
func TestScheduleOneStepAtATime(t *testing.T) {
	clk := fakeclock.New()
	g, _ := rollout.New("late", rollout.WithClock(clk.Now), rollout.WithSchedule(ramp...))
	clk.Advance(48 * time.Hour)
	st := g.Status()
	if st.Percent != 5 || st.Step != 1 {
		t.Fatalf("after a long gap: %+v, want step 1 at 5%%", st)
	}
	if want := clk.Now().Add(2 * time.Hour); !st.NextStepAt.Equal(want) {
		t.Fatalf("next step at %v, want %v (hold restarts at promotion)", st.NextStepAt, want)
	}
	if st := g.Status(); st.Step != 1 {
		t.Fatalf("promoted twice without waiting: %+v", st)
	}
}

func TestPromotionCheckVetoes(t *testing.T) {
	clk := fakeclock.New()
	var (
		allow atomic.Bool
		calls []int
		times []time.Time
	)
	check := func(next int, now time.Time) (bool, string) {
		calls = append(calls, next)
		times = append(times, now)
		if !allow.Load() {
			return false, "guard: under-sampled: 120 of 400 requests"
		}
		return true, ""
	}
	g, _ := rollout.New("vetoed", rollout.WithClock(clk.Now), rollout.WithSchedule(ramp...),
		rollout.WithPromotionCheck(check))
	if st := g.Status(); len(calls) != 0 || st.Held != "" {
		t.Fatalf("check called before the hold ended: %v %+v", calls, st)
	}
	clk.Advance(time.Hour)
	st := g.Status()
	if st.Percent != 1 || st.Step != 0 || st.Held != "guard: under-sampled: 120 of 400 requests" {
		t.Fatalf("vetoed promotion: %+v", st)
	}
	if len(calls) != 1 || calls[0] != 1 || !times[0].Equal(clk.Now()) {
		t.Fatalf("check calls %v at %v, want [1] at %v", calls, times, clk.Now())
	}
	clk.Advance(time.Hour) // still vetoed, asked again
	if st := g.Status(); st.Step != 0 || len(calls) != 2 {
		t.Fatalf("second evaluation: %+v, calls %v", st, calls)
	}
	allow.Store(true)
	st = g.Status()
	if st.Percent != 5 || st.Step != 1 || st.Held != "" {
		t.Fatalf("allowed promotion: %+v", st)
	}
	if !st.NextStepAt.Equal(clk.Now().Add(2 * time.Hour)) {
		t.Fatalf("next step at %v", st.NextStepAt)
	}
}

// TestPromotionCheckMayCallGate: a check runs without the gate's lock, so
// it may read the status or kill the gate (as the guard will).
func TestPromotionCheckMayCallGate(t *testing.T) {
	clk := fakeclock.New()
	var g *rollout.Gate
	g, _ = rollout.New("self", rollout.WithClock(clk.Now), rollout.WithSchedule(ramp...),
		rollout.WithPromotionCheck(func(int, time.Time) (bool, string) {
			_ = g.Status()
			g.Kill("guard: new arm failing")
			return false, "unhealthy"
		}))
	clk.Advance(time.Hour)
	st := g.Status()
	if !st.Killed || st.Percent != 1 || st.Step != 0 || st.Reason != "guard: new arm failing" {
		t.Fatalf("status %+v", st)
	}
}

func TestSetPercentStopsSchedule(t *testing.T) {
	clk := fakeclock.New()
	g, _ := rollout.New("manual", rollout.WithClock(clk.Now), rollout.WithSchedule(ramp...))
	if err := g.SetPercent(0.5); err != nil {
		t.Fatal(err)
	}
	clk.Advance(100 * time.Hour)
	st := g.Status()
	if st.Percent != 0.5 || st.Scheduled || st.Step != 0 || !st.NextStepAt.IsZero() {
		t.Fatalf("schedule advanced after SetPercent: %+v", st)
	}
}

func TestKillFreezesScheduleResumeRestartsHold(t *testing.T) {
	clk := fakeclock.New()
	g, _ := rollout.New("frozen", rollout.WithClock(clk.Now), rollout.WithSchedule(ramp...))
	clk.Advance(30 * time.Minute)
	g.Kill("investigating")
	clk.Advance(10 * time.Hour)
	if st := g.Status(); st.Step != 0 || st.Percent != 1 || !st.NextStepAt.IsZero() || !st.Scheduled {
		t.Fatalf("killed gate: %+v", st)
	}
	g.Resume()
	resumed := clk.Now()
	clk.Advance(59 * time.Minute)
	if st := g.Status(); st.Step != 0 || !st.NextStepAt.Equal(resumed.Add(time.Hour)) {
		t.Fatalf("after Resume the hold must start again: %+v", st)
	}
	clk.Advance(time.Minute)
	if st := g.Status(); st.Step != 1 || st.Percent != 5 {
		t.Fatalf("after the restarted hold: %+v", st)
	}
}

// countingClock counts its reads.
type countingClock struct {
	*fakeclock.Clock
	reads atomic.Int64
}

func (c *countingClock) Now() time.Time {
	c.reads.Add(1)
	return c.Clock.Now()
}

// TestEnabledDrivesSchedule: with no Status call, sampled Enabled calls
// promote the gate once the hold has passed, and not before; a gate without
// a pending promotion never reads the clock in Enabled.
func TestEnabledDrivesSchedule(t *testing.T) {
	clk := &countingClock{Clock: fakeclock.New()}
	g, _ := rollout.New("driven", rollout.WithClock(clk.Now), rollout.WithSchedule(
		rollout.Step{Percent: 0, Hold: time.Hour}, rollout.Step{Percent: 100}))
	clk.reads.Store(0)
	const calls = 100_000
	for i := range calls {
		if g.Enabled(fmt.Sprint(i)) {
			t.Fatal("promoted before the hold ended")
		}
	}
	// About calls/256 = 391 reads: far fewer than one per call.
	if n := clk.reads.Load(); n < 200 || n > 700 {
		t.Fatalf("%d clock reads in %d Enabled calls with a pending promotion, want about %d", n, calls, calls/256)
	}
	clk.Advance(time.Hour)
	first := -1
	for i := range calls {
		if g.Enabled(fmt.Sprint(i)) {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatalf("not promoted after %d Enabled calls past the hold", calls)
	}
	t.Logf("promoted after %d calls past the hold", first+1)
	clk.reads.Store(0)
	for i := range calls {
		if !g.Enabled(fmt.Sprint(i)) {
			t.Fatal("key disabled at 100%")
		}
	}
	if n := clk.reads.Load(); n != 0 {
		t.Fatalf("%d clock reads by Enabled with no pending promotion, want 0", n)
	}
}

// TestConcurrentEvaluation: many goroutines evaluating at once promote
// exactly once per due step, and the check runs once per promotion.
func TestConcurrentEvaluation(t *testing.T) {
	clk := fakeclock.New()
	var checks atomic.Int64
	g, _ := rollout.New("busy", rollout.WithClock(clk.Now), rollout.WithSchedule(ramp...),
		rollout.WithPromotionCheck(func(int, time.Time) (bool, string) {
			checks.Add(1)
			return true, ""
		}))
	clk.Advance(time.Hour)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20_000 {
				_ = g.Enabled(fmt.Sprint(w, "-", i))
				if i%1000 == 0 {
					_ = g.Status()
				}
			}
		})
	}
	wg.Wait()
	if st := g.Status(); st.Step != 1 || st.Percent != 5 {
		t.Fatalf("status %+v, want step 1: the clock did not move after the first promotion", st)
	}
	if n := checks.Load(); n != 1 {
		t.Fatalf("promotion check ran %d times, want 1", n)
	}
}

func TestScheduleHugeHold(t *testing.T) {
	clk := fakeclock.New()
	g, err := rollout.New("forever", rollout.WithClock(clk.Now), rollout.WithSchedule(
		rollout.Step{Percent: 1, Hold: 1<<63 - 1}, rollout.Step{Percent: 100}))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(100 * 365 * 24 * time.Hour)
	for i := range 10_000 {
		_ = g.Enabled(fmt.Sprint(i))
	}
	if st := g.Status(); st.Step != 0 || st.Percent != 1 || !st.Scheduled {
		t.Fatalf("status %+v", st)
	}
}

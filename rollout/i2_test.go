package rollout_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/rollout"
)

// i2Result is what the incident-I2 replay measured.
type i2Result struct {
	killed       bool
	maxPercent   float64
	reason       string
	calls        int // calls until the kill
	newCalls     int // of them, calls routed or shadowed to the new arm
	badAnswers   int // calls that received a bad answer (nil or an error)
	badUsers     int // distinct users among them
	minutes      float64
	heldForCalls bool // a promotion was held for lack of samples
}

// replayI2 replays incident I2: a lookup whose new version returns nil
// instead of the entity for 3% of keys, rolled out 1% → 5% → 25% → 100%
// with one-hour holds, at a steady 5 calls per second on a fake clock,
// every call from a different user. mode is "run", "run+fallback" or
// "shadow".
func replayI2(t *testing.T, mode string) i2Result {
	t.Helper()
	clock := fakeclock.New()
	g, err := rollout.New("account-lookup-v2", rollout.WithClock(clock.Now), rollout.WithLogger(discardLogger()),
		rollout.WithGuard(),
		rollout.WithSchedule(
			rollout.Step{Percent: 1, Hold: time.Hour},
			rollout.Step{Percent: 5, Hold: time.Hour},
			rollout.Step{Percent: 25, Hold: time.Hour},
			rollout.Step{Percent: 100}))
	if err != nil {
		t.Fatal(err)
	}
	var newCalls int
	old := func(ctx context.Context, id string) (*account, error) { return &account{ID: id}, nil }
	buggy := func(ctx context.Context, id string) (*account, error) {
		newCalls++
		if rollout.Bucket("i2-null", id) < 30_000 { // 3% of keys
			return nil, nil // the one-line change: null instead of the entity
		}
		return &account{ID: id}, nil
	}
	arms := rollout.Arms[string, *account]{Old: old, New: buggy, Fallback: mode == "run+fallback"}
	if mode != "shadow" {
		arms.Validate = validAccount
	}
	p := path(t, g, arms)
	var res i2Result
	badUsers := map[string]bool{}
	ctx := context.Background()
	const perCall = 200 * time.Millisecond // 5 calls per second
	for i := 0; i < 6*3600*5; i++ {        // six hours at most
		user := fmt.Sprintf("user-%07d", i*7919%10_000_000)
		newBefore := newCalls
		var v *account
		var err error
		if mode == "shadow" {
			v, err = p.Shadow(ctx, user, user)
		} else {
			v, err = p.Run(ctx, user, user)
		}
		if v == nil || err != nil {
			res.badAnswers++
			badUsers[user] = true
		}
		res.calls++
		clock.Advance(perCall)
		if i%300 == 0 { // once a simulated minute, as an admin GET or Watch poll would
			st := g.Status()
			res.maxPercent = max(res.maxPercent, st.Percent)
			if st.Held != "" && !st.Killed {
				res.heldForCalls = true
			}
		}
		if newCalls == newBefore {
			continue // only a call of the new arm can make the guard kill
		}
		if st := g.Status(); st.Killed {
			res.killed, res.reason = true, st.Reason
			if st.KilledBy != rollout.KilledByGuard {
				t.Errorf("killed by %q", st.KilledBy)
			}
			break
		}
	}
	res.newCalls, res.badUsers = newCalls, len(badUsers)
	res.minutes = float64(res.calls) * perCall.Minutes()
	return res
}

// TestI2ReturnNull is the return-null proof: the guard kills the gate on
// its own before the rollout passes 5%.
func TestI2ReturnNull(t *testing.T) {
	cases := []struct {
		mode         string
		wantBad      int
		wantCalls    int
		wantNewCalls int
		wantReason   string
	}{
		{"run", 14, 52318, 500,
			"new 2.8% failures (14/500) vs old 0.0% (0/51818), z=38.1 (limit 3.24 at look 1; Fisher p=4.4e-29)"},
		{"run+fallback", 0, 52318, 500, // the 14 fallback calls count for old
			"new 2.8% failures (14/500) vs old 0.0% (0/51832), z=38.1 (limit 3.24 at look 1; Fisher p=4.4e-29)"},
		{"shadow", 0, 52318, 500,
			"new 2.8% failures (14/500) vs old 0.0% (0/52318), z=38.3 (limit 3.24 at look 1; Fisher p=3.9e-29)"},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			r := replayI2(t, c.mode)
			t.Logf("I2 %s: killed=%v at %v%% after %d calls (%.0f min, %d on the new arm); bad answers %d to %d users; promotion held for samples: %v; reason: %s",
				c.mode, r.killed, r.maxPercent, r.calls, r.minutes, r.newCalls, r.badAnswers, r.badUsers, r.heldForCalls, r.reason)
			if !r.killed || r.maxPercent >= 5 {
				t.Fatalf("killed %v, max percent %v: the guard must kill before 5%%", r.killed, r.maxPercent)
			}
			if r.badAnswers != c.wantBad || r.badUsers != c.wantBad {
				t.Errorf("bad answers %d to %d users, want %d", r.badAnswers, r.badUsers, c.wantBad)
			}
			if r.calls != c.wantCalls || r.newCalls != c.wantNewCalls || r.reason != c.wantReason {
				t.Errorf("detected after %d calls, %d on new, reason %q; want %d, %d, %q",
					r.calls, r.newCalls, r.reason, c.wantCalls, c.wantNewCalls, c.wantReason)
			}
			if !r.heldForCalls {
				t.Error("the 1% step was never held for lack of samples")
			}
		})
	}
}

package rollout_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/blastradius/blastradius/rollout"
)

// TestGuardTestMatchesGuard: a GuardTest given a gate's counts reaches the
// verdict, with the same reason, that the gate's own guard reaches on them.
func TestGuardTestMatchesGuard(t *testing.T) {
	opts := []rollout.GuardOption{rollout.WithCheckEvery(1000), rollout.WithWindow(1000)}
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(50), rollout.WithGuard(opts...))
	rollout.Record(g, rollout.VariantOld, rollout.OutcomeError, false, 2)
	rollout.Record(g, rollout.VariantOld, rollout.OutcomeOK, false, 998)
	rollout.Record(g, rollout.VariantNew, rollout.OutcomeError, false, 41)
	rollout.Record(g, rollout.VariantNew, rollout.OutcomeOK, false, 959)
	if st := g.Status(); !st.Killed || st.KilledBy != rollout.KilledByGuard {
		t.Fatalf("guard did not trip: %+v", st)
	}
	c := g.Counts()
	if c.New.Calls != 1000 || c.New.Failures != 41 || c.Old.Calls != 1000 || c.Old.Failures != 2 {
		t.Fatalf("Counts = %+v", c)
	}
	gt, err := rollout.NewGuardTest(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if !gt.Ready(c) || gt.Limits(c) != "" {
		t.Fatalf("Ready %v, Limits %q", gt.Ready(c), gt.Limits(c))
	}
	l := gt.Look(1, 0, 1000, c)
	if !l.Trip || l.Reason != g.Status().Reason {
		t.Errorf("Look = %+v, guard's reason %q", l, g.Status().Reason)
	}
	// Equal rates do not trip; a panic of the new arm does, at once.
	same := rollout.Counts{Old: rollout.ArmCounts{Calls: 1000, Failures: 10}, New: rollout.ArmCounts{Calls: 1000, Failures: 10}}
	if l := gt.Look(1, 0, 1000, same); l.Trip {
		t.Errorf("equal rates tripped: %+v", l)
	}
	panicked := same.Add(rollout.Counts{New: rollout.ArmCounts{Calls: 1, Failures: 1, Panics: 1}})
	if r := gt.Limits(panicked); !strings.Contains(r, "new arm panics: 1 in 1001 calls") {
		t.Errorf("Limits = %q", r)
	}
	if d := panicked.Sub(same); d.New.Calls != 1 || d.Old.Calls != 0 {
		t.Errorf("Sub = %+v", d)
	}
}

func TestNewGuardTestErrors(t *testing.T) {
	for _, tc := range []struct {
		opts []rollout.GuardOption
		want string
	}{
		{[]rollout.GuardOption{rollout.WithConfidence(1)}, "WithConfidence(1)"},
		{[]rollout.GuardOption{rollout.WithCheckEvery(300)}, "WithWindow(5000): must be a multiple of WithCheckEvery(300)"},
	} {
		_, err := rollout.NewGuardTest(tc.opts...)
		if !errors.Is(err, rollout.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
	if _, err := rollout.NewGuardTest(nil); err != nil {
		t.Errorf("nil option: %v", err)
	}
}

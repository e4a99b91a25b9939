package fleet_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/rollout"
)

// The fleet view shows each instance's guard: who holds the lease, its
// looks, window and last z, and an instance whose guard cannot reach the
// store judges alone; the guard's metrics count its verdicts.
func TestGuardInFleetView(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mr := metrictest.New(t)
		mem := fleet.NewMemoryStore()
		faulty := newFaulty(mem)
		reg := func() *rollout.Registry {
			r, _ := rollout.NewRegistry()
			g, _ := rollout.New(guarded, rollout.WithPercent(50))
			_ = r.Register(g)
			return r
		}
		i0 := startNode(t, mem, "i0", reg())
		i1 := startNode(t, mem, "i1", reg())
		// Each guard reports through its instance's Syncer; i1's alone
		// goes through faulty.
		runGuard(t, mem, i0.gate(t, guarded), &traffic{}, fleet.WithSyncer(i0.s), fleet.WithGuardMeterProvider(mr))
		runGuard(t, faulty, i1.gate(t, guarded), &traffic{}, fleet.WithSyncer(i1.s), fleet.WithGuardMeterProvider(mr))
		time.Sleep(20 * time.Second)
		synctest.Wait()

		v, err := fleet.List(t.Context(), mem)
		if err != nil {
			t.Fatal(err)
		}
		var holder, other *fleet.GuardStatus
		for _, m := range v.Instances {
			if len(m.Guards) != 1 || m.Guards[0].Gate != guarded || m.Guards[0].Mode != fleet.ModeFleet || len(m.Problems) != 0 {
				t.Fatalf("%s: guards %+v, problems %q", m.ID, m.Guards, m.Problems)
			}
			if m.Guards[0].Holder {
				holder = &m.Guards[0]
			} else {
				other = &m.Guards[0]
			}
		}
		if holder == nil || other == nil {
			t.Fatalf("want one holder and one other: %+v", v.Instances)
		}
		if holder.Looks == 0 || holder.Instances != 2 || holder.Window.New.Calls == 0 || holder.Critical == 0 || holder.Tripped != "" {
			t.Errorf("holder's guard %+v", holder)
		}
		if other.Looks != 0 || other.Counts != (rollout.Counts{}) {
			t.Errorf("other's guard %+v", other)
		}
		pass := mr.Sum("blastradius.fleet.guard.verdicts", "feature_flag.key", guarded, "mode", "fleet", "result", "pass")
		if pass != int64(holder.Looks) || mr.Total("blastradius.fleet.guard.verdicts") != pass {
			t.Errorf("verdicts: %d passes of %d in all, want %d looks", pass, mr.Total("blastradius.fleet.guard.verdicts"), holder.Looks)
		}
		holderID := "i0"
		if st := i1.s.Status(); len(st.Guards) == 1 && st.Guards[0].Holder {
			holderID = "i1"
		}
		if got, ok := mr.Gauge("blastradius.fleet.guard.looks", "feature_flag.key", guarded, "service.instance.id", holderID); !ok || int(got) != holder.Looks {
			t.Errorf("looks gauge of %s: %v %v, want %d", holderID, got, ok, holder.Looks)
		}

		faulty.partition()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		v, err = fleet.List(t.Context(), mem)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range v.Instances {
			local := m.ID == "i1"
			if got := len(m.Guards) == 1 && m.Guards[0].Mode == fleet.ModeLocal; got != local {
				t.Errorf("%s: guards %+v, want local %v", m.ID, m.Guards, local)
			}
			if got := len(m.Problems) == 1 && strings.Contains(m.Problems[0], "guard of "+guarded+" judges this instance alone"); got != local {
				t.Errorf("%s: problems %q", m.ID, m.Problems)
			}
		}
	})
}

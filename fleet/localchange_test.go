package fleet_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/fleet"
)

// A kill made on one instance only (its admin handler, its guard) shows in
// the fleet view at once, not at the next heartbeat.
func TestLocalKillHeartbeatsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := fleet.NewMemoryStore()
		ns := newFleet(t, store, 2, gates)
		synctest.Wait()
		start := time.Now()
		ns[0].gate(t, "checkout-v2").Kill("local INC-7")
		synctest.Wait()
		if d := time.Since(start); d != 0 {
			t.Fatalf("%v of fake time passed", d)
		}
		v, err := fleet.List(t.Context(), store)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range v.Instances {
			gs, _ := m.Gate("checkout-v2")
			if want := m.ID == "i0"; gs.Killed != want || want && gs.Reason != "local INC-7" {
				t.Errorf("%s reports %+v, want killed %v", m.ID, gs, want)
			}
		}
	})
}

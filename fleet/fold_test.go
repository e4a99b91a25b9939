package fleet_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/rollout"
)

func (tr *traffic) total() rollout.Counts {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.c
}

// A process restarts twice under the same instance id: the counts of the
// dead processes are folded into the holder's state and deleted, the
// pooled counts stay whole (no call lost, none counted twice, not even
// after a late write of a dead process), and a new holder takes the folded
// counts over.
func TestGuardFoldsVanishedCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := fleet.NewMemoryStore()
		gate, err := rollout.New(guarded, rollout.WithPercent(50))
		if err != nil {
			t.Fatal(err)
		}
		trA, trB, trC := &traffic{}, &traffic{}, &traffic{}
		_, stopA := runGuard(t, store, gate, trA, fleet.WithGuardInstanceID("i0"))
		time.Sleep(30 * time.Second)
		synctest.Wait()
		stopA()
		lateA, _ := store.Counts(t.Context(), guarded) // A's last write, to replay late
		gB, stopB := runGuard(t, store, gate, trB, fleet.WithGuardInstanceID("i0"))

		time.Sleep(fleet.FoldAfter + 2*time.Minute)
		synctest.Wait()
		entries, _ := store.Counts(t.Context(), guarded)
		if len(entries) != 2 { // B's counts and the holder's state
			t.Fatalf("%d counts entries after the fold, want 2: %v", len(entries), keys(entries))
		}
		pooled := func(g *fleet.Guard) rollout.Counts {
			t.Helper()
			st := g.Status()
			if !st.Holder {
				t.Fatalf("not the holder: %+v", st)
			}
			return st.Counts
		}
		// The status was taken at the last batch; the traffic moved one
		// read past it at most.
		want := trA.total().Add(trB.total())
		if got := pooled(gB); got != want && got.Add(rollout.Counts{Old: rollout.ArmCounts{Calls: 25}, New: rollout.ArmCounts{Calls: 25}}) != want {
			t.Errorf("pooled %+v, want A+B %+v", got, want)
		}
		if st := gB.Status(); st.Instances != 1 {
			t.Errorf("instances %d, want 1 (A folded)", st.Instances)
		}

		// A late write of A, under its old id, counts nothing again.
		for id, v := range lateA {
			if id != "~guard" {
				if err := store.PutCounts(t.Context(), guarded, id, 1<<40, v); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(time.Second)
		synctest.Wait()
		want = trA.total().Add(trB.total())
		if got := pooled(gB); got != want && got.Add(rollout.Counts{Old: rollout.ArmCounts{Calls: 25}, New: rollout.ArmCounts{Calls: 25}}) != want {
			t.Errorf("after A's late write: pooled %+v, want A+B %+v", got, want)
		}

		// B dies, C takes over the lease and the folded counts.
		stopB()
		gC, _ := runGuard(t, store, gate, trC, fleet.WithGuardInstanceID("i0"))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		want = trA.total().Add(trB.total()).Add(trC.total())
		if got := pooled(gC); got != want && got.Add(rollout.Counts{Old: rollout.ArmCounts{Calls: 25}, New: rollout.ArmCounts{Calls: 25}}) != want {
			t.Errorf("after the takeover: pooled %+v, want A+B+C %+v", got, want)
		}
	})
}

func keys(m map[string][]byte) (ks []string) {
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

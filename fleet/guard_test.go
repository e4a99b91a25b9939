package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/internal/fleettest"
	"github.com/blastradius/blastradius/rollout"
)

const guarded = "checkout-v2"

// traffic is an instance's simulated calls of the guarded gate: every read
// adds one batch of 25 calls per arm, the new arm failing newFail of them.
type traffic struct {
	mu      sync.Mutex
	c       rollout.Counts
	newFail int64
}

func (tr *traffic) next() rollout.Counts {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.c = tr.c.Add(rollout.Counts{Old: rollout.ArmCounts{Calls: 25}, New: rollout.ArmCounts{Calls: 25, Failures: tr.newFail}})
	return tr.c
}

// guardedNode is an instance with a Syncer and a fleet Guard of one gate
// at 50%.
type guardedNode struct {
	*node
	g    *fleet.Guard
	stop func()
}

func newGuardedNode(t *testing.T, store fleet.GuardStore, id string, tr *traffic) *guardedNode {
	t.Helper()
	reg, _ := rollout.NewRegistry()
	gate, _ := rollout.New(guarded, rollout.WithPercent(50))
	if err := reg.Register(gate); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, store, id, reg)
	g, stop := runGuard(t, store, gate, tr, fleet.WithGuardInstanceID(id), fleet.WithGuardTimeout(testTimeout))
	return &guardedNode{node: n, g: g, stop: stop}
}

// runGuard runs a fleet Guard of gate on store, with a batch a second, no
// log and opts, that reads its instance's counts from tr (from gate if tr
// is nil); stop ends it, as the process's death would, and runs in Cleanup
// at the latest.
func runGuard(t *testing.T, store fleet.GuardStore, gate *rollout.Gate, tr *traffic, opts ...fleet.GuardOption) (g *fleet.Guard, stop func()) {
	t.Helper()
	base := []fleet.GuardOption{fleet.WithBatchInterval(time.Second), fleet.WithGuardLogger(slog.New(slog.DiscardHandler))}
	g, err := fleet.NewGuard(store, gate, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if tr != nil {
		fleet.SetCounts(g, tr.next)
	}
	return g, fleettest.Run(t, g)
}

func holders(ns []*guardedNode) (ids []string) {
	for _, n := range ns {
		if n.g.Status().Holder {
			ids = append(ids, n.s.ID())
		}
	}
	return ids
}

// Eight instances of which one holds the lease: the pooled counts of a new
// arm failing 4% against 0% trip one verdict, published once as a fleet
// kill with the numbers, and every instance applies it within a second.
func TestGuardKillsFleetOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := fleet.NewMemoryStore()
		ns := make([]*guardedNode, 8)
		for i := range ns {
			ns[i] = newGuardedNode(t, store, fmt.Sprintf("i%d", i), &traffic{newFail: 1})
		}
		var killedAt time.Time
		for range 3000 {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
			snap, _ := store.Read(t.Context())
			if len(snap.Records) > 0 {
				killedAt = snap.Records[0].Published
				break
			}
			if h := holders(ns); len(h) > 1 {
				t.Fatalf("holders %v", h)
			}
		}
		for range 30 {
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
		snap, _ := store.Read(t.Context())
		if snap.Version != 1 || len(snap.Records) != 1 || snap.Records[0].Key != "kill/"+guarded {
			t.Fatalf("store head %d, records %+v: want one kill", snap.Version, snap.Records)
		}
		var reached time.Duration
		for _, n := range ns {
			st := n.gate(t, guarded).Status()
			if !st.Killed || st.KilledBy != rollout.KilledByFleet || !strings.Contains(st.Reason, "fleet guard: new") || !strings.Contains(st.Reason, "pooled from 8 instances") {
				t.Errorf("%s: %+v", n.s.ID(), st)
			}
			h := n.gate(t, guarded).History()
			if last := h[len(h)-1]; last.Kind != rollout.EventKill || last.Source != rollout.KilledByFleet || last.Reason != st.Reason {
				t.Errorf("%s: last event %+v, want the fleet's kill", n.s.ID(), last)
			}
			reached = max(reached, st.KilledAt.Sub(killedAt))
		}
		if h := holders(ns); len(h) != 1 {
			t.Errorf("holders %v, want one", h)
		}
		// The fleet history holds the verdict with its numbers, then the
		// kill it published.
		h, err := fleet.ReadHistory(t.Context(), store, guarded)
		if err != nil {
			t.Fatal(err)
		}
		var fleetWide []fleet.HistoryEntry
		for _, e := range h.Entries {
			if e.Instance == "" {
				fleetWide = append(fleetWide, e)
			}
		}
		if len(fleetWide) != 2 {
			t.Fatalf("fleet-wide history %+v, want a verdict and a kill", fleetWide)
		}
		v, k := fleetWide[0], fleetWide[1]
		if v.Kind != fleet.EntryVerdict || v.Source != rollout.KilledByGuard || !strings.HasPrefix(v.By, "fleet-guard@") ||
			v.Instances != 8 || v.Counts == nil || v.Counts.New.Failures == 0 || !strings.Contains(v.Reason, "z=") {
			t.Errorf("verdict %+v", v)
		}
		if k.Kind != rollout.EventKill || k.Source != rollout.KilledByFleet || k.Reason != v.Reason || k.By != v.By || k.Version != 1 {
			t.Errorf("kill %+v after verdict %+v", k, v)
		}
		if reached > time.Second {
			t.Errorf("the kill reached all 8 instances %v after the verdict, want ≤ 1s", reached)
		}
		t.Logf("kill: %q; reached all 8 in %v", ns[0].gate(t, guarded).Status().Reason, reached)
	})
}

// The lease holder dies: another instance takes over within the lease's
// TTL and continues the test where it stopped (its looks go on counting).
func TestGuardTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := fleet.NewMemoryStore()
		ns := []*guardedNode{
			newGuardedNode(t, store, "i0", &traffic{}),
			newGuardedNode(t, store, "i1", &traffic{}),
		}
		time.Sleep(20*time.Second + time.Millisecond)
		synctest.Wait()
		h := holders(ns)
		if len(h) != 1 {
			t.Fatalf("holders %v", h)
		}
		first, second := ns[0], ns[1]
		if h[0] == "i1" {
			first, second = ns[1], ns[0]
		}
		looks := first.g.Status().Looks
		if looks == 0 {
			t.Fatalf("no looks after 20 s: %+v", first.g.Status())
		}
		first.stop()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		st := second.g.Status()
		if !st.Holder || st.Looks <= looks {
			t.Errorf("after the holder stopped: %+v, want holder with more than %d looks", st, looks)
		}
	})
}

// With the store unreachable, each instance judges its own counts and
// kills its own gate, and reports the local mode.
func TestGuardFallsBackToLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		faulty := newFaulty(fleet.NewMemoryStore())
		n := newGuardedNode(t, faulty, "i0", &traffic{newFail: 2})
		faulty.partition()
		time.Sleep(60 * time.Second)
		synctest.Wait()
		st := n.g.Status()
		if st.Mode != fleet.ModeLocal || st.StoreError == "" {
			t.Errorf("status %+v, want local with the store error", st)
		}
		gs := n.gate(t, guarded).Status()
		if !gs.Killed || gs.KilledBy != rollout.KilledByGuard || !strings.Contains(gs.Reason, "store unreachable, local verdict: new") {
			t.Errorf("gate %+v, want a local kill", gs)
		}
		faulty.heal()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if st := n.g.Status(); st.Mode != fleet.ModeFleet {
			t.Errorf("after heal: %+v", st)
		}
	})
}

func TestNewGuardErrors(t *testing.T) {
	mem := fleet.NewMemoryStore()
	gate, _ := rollout.New(guarded)
	ownGuard, _ := rollout.New(guarded, rollout.WithGuard())
	for _, tc := range []struct {
		store fleet.GuardStore
		gate  *rollout.Gate
		opts  []fleet.GuardOption
		want  string
	}{
		{nil, gate, nil, "fleet: invalid config: nil store"},
		{mem, nil, nil, "fleet: invalid config: nil gate"},
		{mem, ownGuard, nil, `fleet: invalid config: gate "` + guarded + `" has its own guard (rollout.WithGuard)`},
		{mem, gate, []fleet.GuardOption{fleet.WithGuardInstanceID("")}, `fleet: invalid config: WithGuardInstanceID(""): must be 1 to 256 bytes`},
		{mem, gate, []fleet.GuardOption{fleet.WithBatchInterval(0)}, "fleet: invalid config: WithBatchInterval(0s): must be positive"},
		{mem, gate, []fleet.GuardOption{fleet.WithGuardTimeout(-time.Second)}, "fleet: invalid config: WithGuardTimeout(-1s): must be positive"},
		{mem, gate, []fleet.GuardOption{fleet.WithTest(rollout.WithConfidence(2))}, "fleet: invalid config: WithTest: rollout: invalid config: WithConfidence(2)"},
	} {
		_, err := fleet.NewGuard(tc.store, tc.gate, tc.opts...)
		if !errors.Is(err, fleet.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
	if _, err := fleet.NewGuard(mem, gate, nil, fleet.WithGuardLogger(nil)); err != nil {
		t.Errorf("nil option and logger: %v", err)
	}
}

// A partition during batching: the counts written after it are the
// instance's cumulative counts, so the pooled counts lose nothing and count
// nothing twice; an old or repeated sequence changes nothing.
func TestGuardCountsSurvivePartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		faulty := newFaulty(mem)
		tr := &traffic{}
		n := newGuardedNode(t, faulty, "i0", tr)
		time.Sleep(3*time.Second + time.Millisecond)
		faulty.partition()
		time.Sleep(5 * time.Second)
		faulty.heal()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		st := n.g.Status()
		tr.mu.Lock()
		want := tr.c
		tr.mu.Unlock()
		if !st.Holder || st.Instances != 1 || st.Counts != want {
			t.Errorf("status %+v, want holder of 1 instance with counts %+v", st, want)
		}
	})
	ctx := t.Context()
	mem := fleet.NewMemoryStore()
	for _, w := range []struct {
		seq   uint64
		value string
	}{{2, "two"}, {1, "one"}, {2, "again"}} {
		_ = mem.PutCounts(ctx, "g", "i0", w.seq, []byte(w.value))
	}
	if got, _ := mem.Counts(ctx, "g"); len(got) != 1 || string(got["i0"]) != "two" {
		t.Errorf("Counts = %q", got)
	}
	if ok, _ := mem.Lease(ctx, "l", "a", time.Minute); !ok {
		t.Error("free lease not taken")
	}
	if ok, _ := mem.Lease(ctx, "l", "b", time.Minute); ok {
		t.Error("live lease taken by another holder")
	}
}

// The test's start is kept across a store error and a handover before the
// first checkpoint: the first look comes once the pooled new arm has made
// CheckEvery (500) calls since the first holder started the test, as
// without the fault, not 500 calls after the next holder's first batch.
func TestGuardFirstLookSurvivesFault(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(faulty *faultyStore, ns []*guardedNode)
		step  int64 // pooled new-arm calls per batch after the fault
	}{
		{"no fault", func(*faultyStore, []*guardedNode) {}, 50},
		{"store error", func(faulty *faultyStore, _ []*guardedNode) {
			faulty.partition()
			time.Sleep(time.Second)
			faulty.heal()
		}, 50},
		{"handover", func(_ *faultyStore, ns []*guardedNode) {
			for _, n := range ns {
				if n.g.Status().Holder {
					n.stop()
				}
			}
		}, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				faulty := newFaulty(fleet.NewMemoryStore())
				ns := []*guardedNode{
					newGuardedNode(t, faulty, "i0", &traffic{}),
					newGuardedNode(t, faulty, "i1", &traffic{}),
				}
				// Between batches from here on.
				time.Sleep(1500 * time.Millisecond)
				synctest.Wait()
				h := holders(ns)
				if len(h) != 1 {
					t.Fatalf("holders %v after the first batch", h)
				}
				var start int64
				for _, n := range ns {
					if st := n.g.Status(); st.Holder {
						start = st.Counts.New.Calls
					}
				}
				time.Sleep(2 * time.Second)
				tc.fault(faulty, ns)
				for range 60 {
					time.Sleep(time.Second)
					synctest.Wait()
					for _, n := range ns {
						st := n.g.Status()
						if st.Looks == 0 {
							continue
						}
						// The look is due at the first batch 500 calls past
						// the start; the instances' batches interleave, so
						// the pooled counts move by up to two steps.
						if d := st.Counts.New.Calls - start; d < 500 || d >= 500+2*tc.step {
							t.Errorf("first look at %d pooled new-arm calls, %d after the test's start at %d: want 500 to %d", st.Counts.New.Calls, d, start, 500+2*tc.step-1)
						}
						return
					}
				}
				t.Fatal("no look in 60 s")
			})
		})
	}
}

// slowStore answers every call of a fleet Guard after a delay, as a loaded
// store does.
type slowStore struct {
	fleet.GuardStore
	delay time.Duration
}

func (s slowStore) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.delay):
		return nil
	}
}

func (s slowStore) PutCounts(ctx context.Context, name, id string, seq uint64, value []byte) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.GuardStore.PutCounts(ctx, name, id, seq, value)
}

func (s slowStore) Counts(ctx context.Context, name string) (map[string][]byte, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.GuardStore.Counts(ctx, name)
}

func (s slowStore) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := s.wait(ctx); err != nil {
		return false, err
	}
	return s.GuardStore.Lease(ctx, name, holder, ttl)
}

// A batch's store calls take longer in all than the batch interval (short
// batches, a loaded store): the guard still judges the fleet, within its
// timeout, and falls back to its local counts only past the timeout.
func TestGuardTimeoutIndependentOfInterval(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []fleet.GuardOption
		delay time.Duration
		want  string
	}{
		{"default timeout", nil, 40 * time.Millisecond, fleet.ModeFleet},
		{"timeout set", []fleet.GuardOption{fleet.WithGuardTimeout(time.Second)}, 150 * time.Millisecond, fleet.ModeFleet},
		{"past the timeout", []fleet.GuardOption{fleet.WithGuardTimeout(100 * time.Millisecond)}, 40 * time.Millisecond, fleet.ModeLocal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gate, _ := rollout.New(guarded, rollout.WithPercent(50))
				store := slowStore{fleet.NewMemoryStore(), tc.delay}
				g, stop := runGuard(t, store, gate, &traffic{}, append([]fleet.GuardOption{fleet.WithGuardInstanceID("i0"),
					fleet.WithBatchInterval(50 * time.Millisecond)}, tc.opts...)...)
				time.Sleep(30 * time.Second)
				synctest.Wait()
				st := g.Status()
				stop()
				if st.Mode != tc.want || (tc.want == fleet.ModeFleet) != st.Holder {
					t.Errorf("status %+v, want mode %s", st, tc.want)
				}
				if tc.want == fleet.ModeFleet && st.Looks == 0 {
					t.Errorf("no look in 30 s: %+v", st)
				}
			})
		})
	}
}

// countingStore counts the writes of exposure data.
type countingStore struct {
	*fleet.MemoryStore
	mu        sync.Mutex
	exposures int
}

func (s *countingStore) PutCounts(ctx context.Context, name, id string, seq uint64, value []byte) error {
	if strings.HasPrefix(name, "exposure/") {
		s.mu.Lock()
		s.exposures++
		s.mu.Unlock()
	}
	return s.MemoryStore.PutCounts(ctx, name, id, seq, value)
}

// With short batches the exposure data, the larger write, goes to the
// store once a second while the gate does not change, and in the next
// batch after a change, so that the fleet history has it at once.
func TestGuardExposureAtMostEverySecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &countingStore{MemoryStore: fleet.NewMemoryStore()}
		gate, _ := rollout.New(guarded, rollout.WithPercent(50))
		runGuard(t, store, gate, nil, fleet.WithGuardInstanceID("i0"), fleet.WithBatchInterval(50*time.Millisecond))
		time.Sleep(10*time.Second + time.Millisecond) // 200 batches
		synctest.Wait()
		store.mu.Lock()
		n := store.exposures
		store.mu.Unlock()
		if n != 10 {
			t.Errorf("%d writes of the exposure data in 200 batches over 10 s, want 10", n)
		}
		gate.Kill("INC-7")
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		h, err := fleet.ReadHistory(t.Context(), store, guarded)
		if err != nil {
			t.Fatal(err)
		}
		if last := h.Entries[len(h.Entries)-1]; last.Kind != rollout.EventKill || last.Instance != "i0" || last.Reason != "INC-7" {
			t.Errorf("history %+v, want the instance's kill last a batch after it", h.Entries)
		}
	})
}

// A second Run of a running Guard returns ErrRunning at once, as a
// Syncer's does: two would send the same counts id with clashing sequences.
func TestGuardRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate, _ := rollout.New(guarded, rollout.WithPercent(50))
		g, _ := runGuard(t, fleet.NewMemoryStore(), gate, &traffic{})
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		if err := g.Run(ctx); err != fleet.ErrRunning {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
	})
}

// The store loses the guard's data (a wipe) while the lease holder lives on
// and a process whose counts it pooled is gone: the holder starts the test
// again from the counts the store has, as a new holder would, and stores
// its state at once. Its own state, which counts the lost process, would
// hold the test's checkpoints back by all the calls of that process.
func TestGuardHolderSurvivesWipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := fleet.NewMemoryStore()
		gate, _ := rollout.New(guarded, rollout.WithPercent(50))
		holder, _ := runGuard(t, store, gate, &traffic{}, fleet.WithGuardInstanceID("i0"))
		time.Sleep(2 * time.Second)
		_, stopOther := runGuard(t, store, gate, &traffic{}, fleet.WithGuardInstanceID("i1"))
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if st := holder.Status(); !st.Holder || st.Looks == 0 {
			t.Fatalf("i0 before the wipe: %+v, want the holder with looks", st)
		}
		stopOther()
		all, _ := store.Counts(t.Context(), guarded)
		for id := range all {
			if err := store.DeleteCounts(t.Context(), guarded, id); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if all, _ := store.Counts(t.Context(), guarded); all["~guard"] == nil {
			t.Errorf("10 s after the wipe the store holds no test state: %v", keys(all))
		}
		looks := holder.Status().Looks
		time.Sleep(50 * time.Second)
		synctest.Wait()
		if st := holder.Status(); !st.Holder || st.Looks <= looks {
			t.Errorf("i0 looks %d 10 s after the wipe, %d 50 s later, want more: %+v", looks, st.Looks, st)
		}
	})
}

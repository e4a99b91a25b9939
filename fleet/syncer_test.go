package fleet_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/rollout"
)

var gates = []string{"checkout-v2", "search-v3"}

func killed(t *testing.T, ns []*node, gate string) int {
	t.Helper()
	k := 0
	for _, n := range ns {
		if n.gate(t, gate).Status().Killed {
			k++
		}
	}
	return k
}

func TestKillReachesEveryInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := fleet.NewMemoryStore()
		ns := newFleet(t, store, 8, gates)
		synctest.Wait()
		p := newPublisher(t, store)
		start := time.Now()
		pub, err := p.Kill(t.Context(), "checkout-v2", "INC-42")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if k := killed(t, ns, "checkout-v2"); k != 8 {
			t.Fatalf("%d of 8 instances killed the gate, want 8", k)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the kill took %v of fake time, want 0: applied on notification", d)
		}
		for _, n := range ns {
			st := n.gate(t, "checkout-v2").Status()
			if st.Reason != "INC-42" || st.KilledBy != rollout.KilledByFleet {
				t.Errorf("%s: reason %q by %q", n.s.ID(), st.Reason, st.KilledBy)
			}
			if n.gate(t, "search-v3").Status().Killed {
				t.Errorf("%s: search-v3 killed too", n.s.ID())
			}
			if got := n.s.Status().Applied; got != pub.Head {
				t.Errorf("%s applied %+v, want %+v", n.s.ID(), got, pub.Head)
			}
		}
		acks, err := p.Wait(t.Context(), pub)
		if err != nil || !acks.Done() || len(acks.Applied) != 8 {
			t.Fatalf("Wait: %d applied, %d lagging, err %v", len(acks.Applied), len(acks.Lagging), err)
		}
	})
}

func TestEveryOpInVersionOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := fleet.NewMemoryStore()
		p := newPublisher(t, store)
		ctx := t.Context()
		// Published before the instance starts: it must replay them in
		// version order, whatever order the store lists them in.
		mustPub(t)(p.PublishConfig(ctx, []byte(`{"version":"c1","gates":[{"name":"checkout-v2","percent":5}]}`)))
		mustPub(t)(p.Kill(ctx, "search-v3", "INC-1"))
		mustPub(t)(p.SetPercent(ctx, "checkout-v2", 12.5))
		mustPub(t)(p.Resume(ctx, "search-v3"))
		mustPub(t)(p.Kill(ctx, "checkout-v2", "INC-2"))
		n := newNode(t, store, "late", gates)
		synctest.Wait()
		co, se := n.gate(t, "checkout-v2").Status(), n.gate(t, "search-v3").Status()
		if !co.Killed || co.Percent != 12.5 || co.Reason != "INC-2" {
			t.Errorf("checkout-v2 = %+v, want killed at 12.5%%", co)
		}
		if se.Killed {
			t.Errorf("search-v3 killed, want resumed")
		}
		if got := n.s.Status().Config.Version; got != "c1" {
			t.Errorf("config version %q, want c1", got)
		}
		// A percent set after the kill keeps the gate killed.
		mustPub(t)(p.SetPercent(ctx, "checkout-v2", 50))
		synctest.Wait()
		if co := n.gate(t, "checkout-v2").Status(); !co.Killed || co.Percent != 50 {
			t.Errorf("after percent: %+v", co)
		}
	})
}

func mustPub(t *testing.T) func(fleet.Published, error) fleet.Published {
	return func(p fleet.Published, err error) fleet.Published {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// A lost notification is made up by the next heartbeat, which returns the
// store's head, and failing that by the reconcile.
func TestLostNotificationAppliedByHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		f := newFaulty(mem)
		n := newNode(t, f, "i0", gates)
		synctest.Wait()
		f.dropNotifications(true)
		p := newPublisher(t, mem)
		start := time.Now()
		mustPub(t)(p.Kill(t.Context(), "checkout-v2", "INC-7"))
		synctest.Wait()
		if n.gate(t, "checkout-v2").Status().Killed {
			t.Fatal("applied without a notification or a tick")
		}
		for !n.gate(t, "checkout-v2").Status().Killed {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
		}
		if d := time.Since(start); d > testHeartbeat {
			t.Errorf("applied %v after the publish, want within one heartbeat interval (%v)", d, testHeartbeat)
		}
	})
}

// Without heartbeats reaching the store, the reconcile reads it.
func TestReconcileAppliesWithoutNotification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		f := newFaulty(mem)
		// Heartbeats every minute: only the reconcile can pick the kill up.
		n := newNode(t, f, "i0", gates, fleet.WithHeartbeatInterval(time.Minute), fleet.WithStaleAfter(time.Hour))
		synctest.Wait()
		f.dropNotifications(true)
		start := time.Now()
		mustPub(t)(newPublisher(t, mem).Kill(t.Context(), "checkout-v2", "x"))
		for !n.gate(t, "checkout-v2").Status().Killed {
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
		if d := time.Since(start); d > testReconcile*6/5 {
			t.Errorf("applied after %v, want within the reconcile's jitter bound %v", d, testReconcile*6/5)
		}
	})
}

// A kill published while an instance is partitioned from the store is
// applied soon after the partition heals (pub/sub lost it).
func TestPartitionKillAppliedAfterHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		f := newFaulty(mem)
		n := newNode(t, f, "i0", gates)
		other := newNode(t, mem, "i1", gates)
		synctest.Wait()
		f.partition()
		time.Sleep(2 * time.Second)
		mustPub(t)(newPublisher(t, mem).Kill(t.Context(), "checkout-v2", "INC-9"))
		synctest.Wait()
		if !other.gate(t, "checkout-v2").Status().Killed {
			t.Fatal("the connected instance did not apply the kill")
		}
		if n.gate(t, "checkout-v2").Status().Killed {
			t.Fatal("the partitioned instance applied the kill")
		}
		time.Sleep(2 * time.Second)
		f.heal()
		healed := time.Now()
		for !n.gate(t, "checkout-v2").Status().Killed {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
		}
		if d := time.Since(healed); d > 500*time.Millisecond {
			t.Errorf("applied %v after the heal, want within 500ms (the retry bound)", d)
		}
	})
}

// While the store hangs, every instance keeps serving its state, changes
// nothing, reports itself stale after the bound, and resyncs cleanly.
func TestHangFailsStatic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		p := newPublisher(t, mem)
		mustPub(t)(p.PublishConfig(t.Context(), []byte(`{"version":"c1","gates":[{"name":"checkout-v2","percent":50}]}`)))
		f := newFaulty(mem)
		ns := newFleet(t, f, 4, gates)
		synctest.Wait()
		before := make([]fleet.Instance, len(ns))
		for i, n := range ns {
			before[i] = n.s.Status()
		}
		f.hang()
		hungAt := time.Now()
		for time.Since(hungAt) < 30*time.Second {
			time.Sleep(250 * time.Millisecond)
			for i, n := range ns {
				st := n.s.Status()
				if st.Applied != before[i].Applied || st.Config.Hash != before[i].Config.Hash {
					t.Fatalf("%s changed state during the hang: %+v", st.ID, st.Applied)
				}
				if got := n.gate(t, "checkout-v2").Status().Percent; got != 50 {
					t.Fatalf("percent %v during the hang", got)
				}
				wantStale := time.Since(hungAt) > testStale+testTimeout
				if wantStale && !st.Stale {
					t.Fatalf("%s not stale %v into the hang", st.ID, time.Since(hungAt))
				}
			}
		}
		// The local kill switch works during the outage.
		ns[0].gate(t, "search-v3").Kill("local")
		f.unhang()
		time.Sleep(testHeartbeat)
		synctest.Wait()
		for i, n := range ns {
			st := n.s.Status()
			if st.Stale || st.StoreError != "" || st.Applied != before[i].Applied {
				t.Errorf("%s after the hang: stale %v, error %q, applied %+v", st.ID, st.Stale, st.StoreError, st.Applied)
			}
		}
		if !ns[0].gate(t, "search-v3").Status().Killed {
			t.Error("the resync undid a local kill")
		}
		mustPub(t)(p.Kill(t.Context(), "checkout-v2", "after"))
		synctest.Wait()
		if k := killed(t, ns, "checkout-v2"); k != 4 {
			t.Errorf("%d of 4 applied the kill after the hang", k)
		}
	})
}

// After the store loses its data, instances keep their state and report
// the empty store; a publish starts a new epoch at version 1, and every
// instance applies it although it is below the version they had.
func TestDataLossNewEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		p := newPublisher(t, mem)
		ctx := t.Context()
		mustPub(t)(p.PublishConfig(ctx, []byte(`{"version":"c1","gates":[{"name":"checkout-v2","percent":50}]}`)))
		for range 25 {
			mustPub(t)(p.Kill(ctx, "search-v3", "x"))
			mustPub(t)(p.Resume(ctx, "search-v3"))
		}
		ns := newFleet(t, mem, 8, gates)
		synctest.Wait()
		hash := ns[0].s.Status().Config.Hash
		if v := ns[0].s.Status().Applied.Version; v != 51 {
			t.Fatalf("applied version %d, want 51", v)
		}
		mem.Flush()
		time.Sleep(2 * testHeartbeat)
		synctest.Wait()
		for _, n := range ns {
			st := n.s.Status()
			if st.Applied != (fleet.Head{}) || st.Config.Hash != hash || st.Stale {
				t.Errorf("%s after the flush: applied %+v, hash %s, stale %v", st.ID, st.Applied, st.Config.Hash, st.Stale)
			}
			if g := n.gate(t, "checkout-v2").Status(); g.Percent != 50 || g.Killed {
				t.Errorf("%s lost its state: %+v", st.ID, g)
			}
		}
		pub := mustPub(t)(p.Kill(ctx, "checkout-v2", "after flush"))
		if pub.Version != 1 {
			t.Fatalf("version after the flush %d, want 1", pub.Version)
		}
		synctest.Wait()
		if k := killed(t, ns, "checkout-v2"); k != 8 {
			t.Errorf("%d of 8 applied the first kill of the new epoch", k)
		}
	})
}

// A revert publishes earlier content again: it is a new version, so it
// applies, although its hash was seen before.
func TestRevertApplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		p := newPublisher(t, mem)
		n := newNode(t, mem, "i0", gates)
		ctx := t.Context()
		a := []byte(`{"version":"a","gates":[{"name":"checkout-v2","percent":5}]}`)
		b := []byte(`{"version":"b","gates":[{"name":"checkout-v2","percent":50}]}`)
		var hashes []string
		for _, doc := range [][]byte{a, b, a} {
			mustPub(t)(p.PublishConfig(ctx, doc))
			synctest.Wait()
			hashes = append(hashes, n.s.Status().Config.Hash)
		}
		if hashes[0] != hashes[2] || hashes[0] == hashes[1] {
			t.Errorf("hashes %v: want a, b, a", hashes)
		}
		if got := n.gate(t, "checkout-v2").Status().Percent; got != 5 {
			t.Errorf("percent %v after the revert, want 5", got)
		}
	})
}

// An instance whose build does not know a gate refuses a document naming
// it, reports the refusal, and still applies a kill of a gate it knows.
func TestRefusedDocumentKillStillApplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		p := newPublisher(t, mem)
		ctx := t.Context()
		ns := newFleet(t, mem, 7, []string{"checkout-v2", "search-v3", "router-v4"})
		old := newNode(t, mem, "old", []string{"checkout-v2", "search-v3"})
		synctest.Wait()
		doc := mustPub(t)(p.PublishConfig(ctx, []byte(`{"version":"c2","gates":[{"name":"checkout-v2","percent":20},{"name":"router-v4","percent":1}]}`)))
		synctest.Wait()
		st := old.s.Status()
		if st.Rejected == nil || st.Rejected.Version != doc.Version || !strings.Contains(st.Rejected.Error, "unknown gate") {
			t.Fatalf("rejection = %+v", st.Rejected)
		}
		if got := old.gate(t, "checkout-v2").Status().Percent; got != 100 {
			t.Errorf("the refused document changed checkout-v2 to %v%%", got)
		}
		acks, err := p.Wait(ctx, doc)
		if err != nil || len(acks.Refused) != 1 || acks.Refused[0].ID != "old" || len(acks.Applied) != 7 {
			t.Fatalf("Wait: refused %d, applied %d, err %v", len(acks.Refused), len(acks.Applied), err)
		}
		v, err := fleet.List(ctx, mem)
		if err != nil {
			t.Fatal(err)
		}
		if m := v.Instances[0]; m.ID != "old" || !m.Refusing || !m.ConfigDiffers || m.Behind {
			t.Errorf("first listed %s: refusing %v, differs %v, behind %v; problems %q", m.ID, m.Refusing, m.ConfigDiffers, m.Behind, m.Problems)
		}
		kill := mustPub(t)(p.Kill(ctx, "search-v3", "INC-5"))
		synctest.Wait()
		if k := killed(t, append(ns, old), "search-v3"); k != 8 {
			t.Errorf("%d of 8 killed search-v3, want 8 (the refusing one too)", k)
		}
		acks, _ = p.Wait(ctx, kill)
		if len(acks.Applied) != 8 {
			t.Errorf("kill applied on %d", len(acks.Applied))
		}
		rk := mustPub(t)(p.Kill(ctx, "router-v4", "INC-6"))
		synctest.Wait()
		acks, _ = p.Wait(ctx, rk)
		if len(acks.NoGate) != 1 || acks.NoGate[0].ID != "old" {
			t.Errorf("NoGate = %v, want old", acks.NoGate)
		}
	})
}

// The stale 8th instance: it booted with an old document and its build
// refuses the store's; the fleet view flags it within one heartbeat
// interval of its start.
func TestStaleInstanceListedWithinOneHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		p := newPublisher(t, mem)
		ctx := t.Context()
		mustPub(t)(p.PublishConfig(ctx, []byte(`{"version":"v2","gates":[{"name":"checkout-v2","percent":100},{"name":"router-v4","percent":0}]}`)))
		newFleet(t, mem, 7, []string{"checkout-v2", "router-v4"})
		reg, _ := rollout.NewRegistry()
		g, _ := rollout.New("checkout-v2")
		_ = reg.Register(g)
		if _, err := reg.LoadConfig(strings.NewReader(`{"version":"v1","gates":[{"name":"checkout-v2","percent":3}]}`)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		start := time.Now()
		startNode(t, mem, "i7", reg)
		var m fleet.Member
		for {
			v, err := fleet.List(ctx, mem)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Instances) == 8 && v.Instances[0].ID == "i7" {
				m = v.Instances[0]
				if len(v.Instances[1].Problems) != 0 {
					t.Fatalf("i7 listed with a healthy one after it: %+v", v.Instances[1].Problems)
				}
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if d := time.Since(start); d > testHeartbeat {
			t.Errorf("listed stale %v after start, want within %v", d, testHeartbeat)
		}
		if !m.ConfigDiffers || !m.Refusing || m.Config.Version != "v1" {
			t.Errorf("i7: %+v", m.Problems)
		}
	})
}

// A local kill (the admin handler, the guard) holds across reconciles and
// heartbeats: only a newer record of that gate changes it.
func TestLocalKillHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		p := newPublisher(t, mem)
		mustPub(t)(p.Resume(t.Context(), "checkout-v2"))
		n := newNode(t, mem, "i0", gates)
		synctest.Wait()
		n.gate(t, "checkout-v2").Kill("local")
		time.Sleep(3 * testReconcile)
		mustPub(t)(p.SetPercent(t.Context(), "search-v3", 10))
		synctest.Wait()
		if !n.gate(t, "checkout-v2").Status().Killed {
			t.Fatal("a reconcile undid the local kill")
		}
		mustPub(t)(p.Resume(t.Context(), "checkout-v2"))
		synctest.Wait()
		if n.gate(t, "checkout-v2").Status().Killed {
			t.Fatal("a newer resume did not apply")
		}
	})
}

// versionStore serves fixed snapshots, to test what an instance does when
// the store's version goes back within an epoch (a restored backup).
type versionStore struct {
	*fleet.MemoryStore
	mu   sync.Mutex
	snap fleet.Snapshot
}

func (v *versionStore) Read(context.Context) (fleet.Snapshot, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.snap, nil
}

func (v *versionStore) set(s fleet.Snapshot) {
	v.mu.Lock()
	v.snap = s
	v.mu.Unlock()
}

func rec(key string, version uint64, value string) fleet.Record {
	return fleet.Record{Key: key, Version: version, Value: []byte(value)}
}

func TestVersionWentBackKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vs := &versionStore{MemoryStore: fleet.NewMemoryStore()}
		vs.set(fleet.Snapshot{Head: fleet.Head{Epoch: "e", Version: 51}, Records: []fleet.Record{
			rec("kill/checkout-v2", 51, `{"op":"resume","gate":"checkout-v2"}`),
		}})
		n := newNode(t, vs, "i0", gates)
		synctest.Wait()
		// The restored backup is at 40 and still holds the kill that v51
		// resumed: applying it would regress.
		vs.set(fleet.Snapshot{Head: fleet.Head{Epoch: "e", Version: 40}, Records: []fleet.Record{
			rec("kill/checkout-v2", 40, `{"op":"kill","gate":"checkout-v2"}`),
		}})
		time.Sleep(testReconcile * 2)
		synctest.Wait()
		if n.gate(t, "checkout-v2").Status().Killed {
			t.Fatal("a version older than the applied one was applied")
		}
		if got := n.s.Status().Applied; got.Version != 40 {
			t.Fatalf("applied %+v, want the store's version 40 as the new baseline", got)
		}
		// Later publishes (41 and up) apply.
		vs.set(fleet.Snapshot{Head: fleet.Head{Epoch: "e", Version: 41}, Records: []fleet.Record{
			rec("kill/checkout-v2", 41, `{"op":"kill","gate":"checkout-v2","reason":"new"}`),
		}})
		time.Sleep(testReconcile * 2)
		synctest.Wait()
		if !n.gate(t, "checkout-v2").Status().Killed {
			t.Fatal("a publish after the restore was not applied")
		}
	})
}

func TestMalformedRecordsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vs := &versionStore{MemoryStore: fleet.NewMemoryStore()}
		vs.set(fleet.Snapshot{Head: fleet.Head{Epoch: "e", Version: 4}, Records: []fleet.Record{
			rec("kill/checkout-v2", 1, `{"op":"kill","gate":"search-v3"}`), // key and gate disagree
			rec("percent/search-v3", 2, `{"op":"percent","gate":"search-v3","percent":101}`),
			rec("config", 3, `not json`),
			rec("kill/search-v3", 4, `{"op":"kill","gate":"search-v3","future_field":1}`),
		}})
		n := newNode(t, vs, "i0", gates)
		synctest.Wait()
		if n.gate(t, "checkout-v2").Status().Killed {
			t.Error("a record under another gate's key was applied")
		}
		if g := n.gate(t, "search-v3").Status(); !g.Killed || g.Percent != 100 {
			t.Errorf("search-v3 = %+v: want killed (unknown fields ignored), percent unchanged", g)
		}
		if r := n.s.Status().Rejected; r == nil || r.Key != "config" || r.Version != 3 {
			t.Errorf("last rejection %+v, want config v3", r)
		}
	})
}

// Two operators publishing at once: every publish gets its own version,
// none is lost, and the instance ends on the last.
func TestConcurrentPublishers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		n := newNode(t, mem, "i0", gates)
		var wg sync.WaitGroup
		versions := make(chan uint64, 200)
		for op := range 2 {
			p := newPublisher(t, mem)
			wg.Go(func() {
				for i := range 100 {
					gate := gates[op]
					pub, err := p.SetPercent(t.Context(), gate, float64(i))
					if err != nil {
						t.Error(err)
						return
					}
					versions <- pub.Version
				}
			})
		}
		wg.Wait()
		close(versions)
		seen := map[uint64]bool{}
		for v := range versions {
			if seen[v] {
				t.Fatalf("version %d published twice", v)
			}
			seen[v] = true
		}
		for v := uint64(1); v <= 200; v++ {
			if !seen[v] {
				t.Fatalf("version %d missing", v)
			}
		}
		synctest.Wait()
		if got := n.s.Status().Applied.Version; got != 200 {
			t.Errorf("applied %d, want 200", got)
		}
		for _, g := range gates {
			if p := n.gate(t, g).Status().Percent; p != 99 {
				t.Errorf("%s at %v%%, want 99", g, p)
			}
		}
	})
}

func TestBootFromCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "fleet.json")
		mem := fleet.NewMemoryStore()
		p := newPublisher(t, mem)
		mustPub(t)(p.PublishConfig(t.Context(), []byte(`{"version":"c1","gates":[{"name":"checkout-v2","percent":30}]}`)))
		pub := mustPub(t)(p.Kill(t.Context(), "search-v3", "INC-3"))
		first := newNode(t, mem, "i0", gates, fleet.WithCacheFile(path))
		synctest.Wait()
		first.stop()

		f := newFaulty(mem)
		f.partition()
		n := newNode(t, f, "i1", gates, fleet.WithCacheFile(path))
		<-n.s.Ready()
		st := n.s.Status()
		if st.Source != fleet.SourceCache || st.Applied != pub.Head || st.Config.Version != "c1" {
			t.Fatalf("booted: source %q, applied %+v, config %q", st.Source, st.Applied, st.Config.Version)
		}
		if !n.gate(t, "search-v3").Status().Killed || n.gate(t, "checkout-v2").Status().Percent != 30 {
			t.Fatal("the cache's state was not applied")
		}
		mustPub(t)(p.Resume(t.Context(), "search-v3"))
		f.heal()
		time.Sleep(testHeartbeat)
		synctest.Wait()
		if st := n.s.Status(); st.Source != fleet.SourceStore || st.Applied.Version != pub.Version+1 {
			t.Fatalf("after the heal: source %q, applied %+v", st.Source, st.Applied)
		}
		if n.gate(t, "search-v3").Status().Killed {
			t.Fatal("the resume published during the outage was not applied")
		}
	})
}

func TestStoppedInstanceListed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		ns := newFleet(t, mem, 3, gates)
		vanish := newFaulty(mem)
		gone := newNode(t, vanish, "gone", gates)
		synctest.Wait()
		ns[0].stop()
		vanish.partition()
		time.Sleep(5 * testHeartbeat)
		v, err := fleet.List(t.Context(), mem)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]fleet.Member{}
		for _, m := range v.Instances {
			byID[m.ID] = m
		}
		if m := byID["i0"]; m.Live || !m.Stopped {
			t.Errorf("i0: live %v stopped %v", m.Live, m.Stopped)
		}
		if m := byID["gone"]; m.Live || m.Stopped || len(m.Problems) == 0 || !strings.HasPrefix(m.Problems[0], "vanished") {
			t.Errorf("gone: live %v, problems %q", m.Live, m.Problems)
		}
		if m := byID["i1"]; !m.Current() {
			t.Errorf("i1 not current: %q", m.Problems)
		}
		if !gone.s.Status().Stale {
			t.Error("the partitioned instance does not report itself stale")
		}
	})
}

// TestNewErrors proves that every invalid argument and option of New and
// NewPublisher fails at construction with an error that wraps
// ErrInvalidConfig and names the option and its value.
func TestNewErrors(t *testing.T) {
	mem := fleet.NewMemoryStore()
	reg, _ := rollout.NewRegistry()
	for _, tc := range []struct {
		store fleet.Store
		reg   *rollout.Registry
		opts  []fleet.Option
		want  string
	}{
		{nil, reg, nil, "fleet: invalid config: nil store"},
		{mem, nil, nil, "fleet: invalid config: nil registry"},
		{mem, reg, []fleet.Option{fleet.WithInstanceID("")}, `fleet: invalid config: WithInstanceID(""): must be 1 to 256 bytes`},
		{mem, reg, []fleet.Option{fleet.WithInstanceID(strings.Repeat("x", 257))}, `WithInstanceID("xxx`},
		{mem, reg, []fleet.Option{fleet.WithHeartbeatInterval(0)}, "fleet: invalid config: WithHeartbeatInterval(0s): must be positive"},
		{mem, reg, []fleet.Option{fleet.WithHeartbeatTTL(-time.Second)}, "fleet: invalid config: WithHeartbeatTTL(-1s): must be positive"},
		{mem, reg, []fleet.Option{fleet.WithHeartbeatInterval(time.Second), fleet.WithHeartbeatTTL(time.Second)}, "fleet: invalid config: WithHeartbeatTTL(1s): must exceed the heartbeat interval 1s"},
		{mem, reg, []fleet.Option{fleet.WithHeartbeatTTL(5 * time.Second)}, "fleet: invalid config: WithHeartbeatTTL(5s): must exceed the heartbeat interval 5s"},
		{mem, reg, []fleet.Option{fleet.WithReconcileInterval(-1)}, "fleet: invalid config: WithReconcileInterval(-1ns): must be positive"},
		{mem, reg, []fleet.Option{fleet.WithStaleAfter(0)}, "fleet: invalid config: WithStaleAfter(0s): must be positive"},
		{mem, reg, []fleet.Option{fleet.WithTimeout(0)}, "fleet: invalid config: WithTimeout(0s): must be positive"},
		{mem, reg, []fleet.Option{fleet.WithCacheFile("")}, `fleet: invalid config: WithCacheFile(""): must not be empty`},
	} {
		_, err := fleet.New(tc.store, tc.reg, tc.opts...)
		if !errors.Is(err, fleet.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New: err = %v, want %q wrapping ErrInvalidConfig", err, tc.want)
		}
	}
	for _, tc := range []struct {
		store fleet.Store
		opts  []fleet.PublisherOption
		want  string
	}{
		{nil, nil, "fleet: invalid config: nil store"},
		{mem, []fleet.PublisherOption{fleet.WithActor(strings.Repeat("a", 257))}, `fleet: invalid config: WithActor("aaa`},
		{mem, []fleet.PublisherOption{fleet.WithPollInterval(0)}, "fleet: invalid config: WithPollInterval(0s): must be positive"},
	} {
		_, err := fleet.NewPublisher(tc.store, tc.opts...)
		if !errors.Is(err, fleet.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewPublisher: err = %v, want %q wrapping ErrInvalidConfig", err, tc.want)
		}
	}
}

// TestNilMeansDefault: a nil option, and nil for every func, provider,
// logger and clock option, is the default, not an error.
func TestNilMeansDefault(t *testing.T) {
	mem := fleet.NewMemoryStore()
	reg, _ := rollout.NewRegistry()
	if _, err := fleet.New(mem, reg, nil, fleet.WithOnApply(nil), fleet.WithClock(nil), fleet.WithLogger(nil), fleet.WithMeterProvider(nil)); err != nil {
		t.Errorf("New with nils: %v", err)
	}
	if _, err := fleet.NewPublisher(mem, nil); err != nil {
		t.Errorf("NewPublisher with a nil option: %v", err)
	}
}

func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, fleet.NewMemoryStore(), "i0", gates)
		synctest.Wait()
		if err := n.s.Run(t.Context()); err != fleet.ErrRunning {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
	})
}

func TestPublisherRefusesBadInput(t *testing.T) {
	mem := fleet.NewMemoryStore()
	p := newPublisher(t, mem)
	ctx := t.Context()
	for name, f := range map[string]func() error{
		"bad gate name": func() error { _, err := p.Kill(ctx, "no spaces", "x"); return err },
		"percent 101":   func() error { _, err := p.SetPercent(ctx, "g", 101); return err },
		"percent step":  func() error { _, err := p.SetPercent(ctx, "g", 0.00001); return err },
		"malformed doc": func() error { _, err := p.PublishConfig(ctx, []byte(`{"gates":[]}`)); return err },
		"not json":      func() error { _, err := p.PublishConfig(ctx, []byte(`{`)); return err },
		"long reason":   func() error { _, err := p.Kill(ctx, "g", strings.Repeat("x", 1025)); return err },
		"duplicate gate": func() error {
			_, err := p.PublishConfig(ctx, []byte(`{"version":"1","gates":[{"name":"a"},{"name":"a"}]}`))
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: published", name)
		}
	}
	if snap, _ := mem.Read(ctx); snap.Version != 0 {
		t.Errorf("store at version %d, want nothing published", snap.Version)
	}
}

// TestPublisherRefusesBadGateOps: a gate name or percent that every
// instance would refuse is not published at all.
func TestPublisherRefusesBadGateOps(t *testing.T) {
	store := fleet.NewMemoryStore()
	p, err := fleet.NewPublisher(store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"kill ../x":        func() error { _, err := p.Kill(ctx, "../x", "r"); return err },
		"resume empty":     func() error { _, err := p.Resume(ctx, ""); return err },
		"percent 101":      func() error { _, err := p.SetPercent(ctx, "checkout-v2", 101); return err },
		"percent 0.00001":  func() error { _, err := p.SetPercent(ctx, "checkout-v2", 0.00001); return err },
		"percent bad name": func() error { _, err := p.SetPercent(ctx, "a b", 5); return err },
	} {
		if err := call(); !errors.Is(err, rollout.ErrInvalidConfig) || !strings.Contains(err.Error(), "not published") {
			t.Errorf("%s: err = %v, want a refusal wrapping rollout.ErrInvalidConfig", name, err)
		}
	}
	snap, err := store.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != 0 || len(snap.Records) != 0 {
		t.Errorf("store at version %d with %d records after refusals, want nothing published", snap.Version, len(snap.Records))
	}
}

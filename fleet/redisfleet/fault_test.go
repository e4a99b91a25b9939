package redisfleet_test

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet/internal/redistest"
	"github.com/blastradius/blastradius/internal/fleettest"
	"github.com/blastradius/blastradius/rollout"
)

// Redis hung (SIGSTOP) while 8 instances call Enabled in a loop: no answer
// changes, every instance reports itself stale, and all resync cleanly
// after SIGCONT.
func TestHangFailsStatic(t *testing.T) {
	hang := 30 * time.Second
	if testing.Short() {
		hang = 3 * time.Second
	}
	srv := redistest.StartT(t)
	p := newPublisher(t, srv.Addr)
	must(t)(p.PublishConfig(t.Context(), []byte(`{"version":"c1","gates":[{"name":"checkout-v2","percent":50}]}`)))
	ns := newFleet(t, srv.Addr, 8, gates)
	waitFor(t, 2*time.Second, "config on every instance", func() bool {
		for _, n := range ns {
			if n.s.Status().Config.Version != "c1" {
				return false
			}
		}
		return true
	})
	before := make([]fleet.Instance, len(ns))
	for i, n := range ns {
		before[i] = n.s.Status()
	}

	// Each instance serves keys in a loop; an answer that differs from the
	// one before the hang is a state change.
	keys := make([]string, 64)
	want := make([]bool, len(keys))
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
		want[i] = ns[0].gate(t, "checkout-v2").Enabled(keys[i])
	}
	var calls, changes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range ns {
		g := n.gate(t, "checkout-v2")
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%64 == 0 {
					runtime.Gosched() // a service also waits on I/O
				}
				k := i % len(keys)
				if g.Enabled(keys[k]) != want[k] {
					changes.Add(1)
				}
				calls.Add(1)
			}
		})
	}

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Now()
	time.Sleep(hang) // the fault lasts its full length
	for _, n := range ns {
		if st := n.s.Status(); !st.Stale || st.StoreError == "" {
			t.Errorf("%s %v into the hang: stale %v, store error %q", st.ID, time.Since(pausedAt).Round(time.Millisecond), st.Stale, st.StoreError)
		}
	}
	if err := srv.Continue(); err != nil {
		t.Fatal(err)
	}
	resync := waitFor(t, 10*time.Second, "resync after SIGCONT", func() bool {
		for _, n := range ns {
			if st := n.s.Status(); st.Stale || st.StoreError != "" {
				return false
			}
		}
		return true
	})
	close(stop)
	wg.Wait()
	t.Logf("hang %v: %d Enabled calls, %d changed answers; resync %v after SIGCONT", hang, calls.Load(), changes.Load(), resync)
	if changes.Load() != 0 {
		t.Errorf("%d answers changed during the hang", changes.Load())
	}
	for i, n := range ns {
		if st := n.s.Status(); st.Applied != before[i].Applied || st.Config.Hash != before[i].Config.Hash {
			t.Errorf("%s regressed or moved: %+v", st.ID, st.Applied)
		}
	}
	must(t)(p.Kill(t.Context(), "checkout-v2", "after the hang"))
	d := waitFor(t, 2*time.Second, "kill after the hang", func() bool { return allKilled(t, ns, "checkout-v2") })
	t.Logf("kill after the hang applied on 8 of 8 in %v", d)
}

// FLUSHALL: the instances keep their state and report the empty store;
// after re-initialisation (the next publish makes a new epoch at version 1)
// every instance applies the next kill.
func TestFlushAllNewEpoch(t *testing.T) {
	srv := redistest.StartT(t)
	ctx := t.Context()
	p := newPublisher(t, srv.Addr)
	must(t)(p.PublishConfig(ctx, []byte(`{"version":"c1","gates":[{"name":"checkout-v2","percent":50}]}`)))
	for range 25 {
		must(t)(p.Kill(ctx, "search-v3", "x"))
		must(t)(p.Resume(ctx, "search-v3"))
	}
	ns := newFleet(t, srv.Addr, 8, gates)
	old := ns[0].s.Status()
	if old.Applied.Version != 51 {
		t.Fatalf("applied %+v, want version 51", old.Applied)
	}
	if err := newClient(t, srv.Addr).FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, 3*time.Second, "every instance sees the empty store", func() bool {
		for _, n := range ns {
			if n.s.Status().Applied != (fleet.Head{}) {
				return false
			}
		}
		return true
	})
	t.Logf("empty store seen by 8 of 8 in %v", d)
	for _, n := range ns {
		st := n.s.Status()
		if st.Config.Hash != old.Config.Hash || st.Stale || n.gate(t, "checkout-v2").Status().Percent != 50 {
			t.Errorf("%s lost its state: hash %s, stale %v", st.ID, st.Config.Hash, st.Stale)
		}
	}
	pub := must(t)(p.Kill(ctx, "checkout-v2", "after FLUSHALL"))
	if pub.Version != 1 || pub.Epoch == old.Applied.Epoch {
		t.Fatalf("publish after FLUSHALL: %+v (old epoch %s)", pub.Head, old.Applied.Epoch)
	}
	d = waitFor(t, 2*time.Second, "kill after FLUSHALL on 8 instances", func() bool { return allKilled(t, ns, "checkout-v2") })
	t.Logf("kill after FLUSHALL applied on 8 of 8 in %v", d)
}

// A revert publishes earlier content again; it applies, by version.
func TestRevertApplies(t *testing.T) {
	srv := redistest.StartT(t)
	p := newPublisher(t, srv.Addr)
	n := startNode(t, srv.Addr, "i0", fleettest.Registry(t, gates))
	a := []byte(`{"version":"a","gates":[{"name":"checkout-v2","percent":5}]}`)
	b := []byte(`{"version":"b","gates":[{"name":"checkout-v2","percent":50}]}`)
	var hashes []string
	for _, doc := range [][]byte{a, b, a} {
		pub := must(t)(p.PublishConfig(t.Context(), doc))
		waitFor(t, 2*time.Second, "apply", func() bool { return n.s.Status().Applied == pub.Head })
		hashes = append(hashes, n.s.Status().Config.Hash)
	}
	if hashes[0] != hashes[2] || hashes[0] == hashes[1] {
		t.Errorf("hashes %v, want a b a", hashes)
	}
	if got := n.gate(t, "checkout-v2").Status().Percent; got != 5 {
		t.Errorf("percent %v after the revert, want 5", got)
	}
}

// oldBuild starts an instance whose build knows only checkout-v2 and
// search-v3, booted with its own stale document.
func oldBuild(t *testing.T, addr string) *node {
	t.Helper()
	reg := fleettest.Registry(t, gates)
	if _, err := reg.LoadConfig(strings.NewReader(`{"version":"v1","gates":[{"name":"checkout-v2","percent":3}]}`)); err != nil {
		t.Fatal(err)
	}
	return startNode(t, addr, "old", reg)
}

const docV2 = `{"version":"v2","gates":[{"name":"checkout-v2","percent":100},{"name":"router-v4","percent":0}]}`

// An instance that does not know a gate refuses a document naming it and
// reports it: in its status, in the fleet view and in Wait's acks.
func TestRefusedDocumentReported(t *testing.T) {
	srv := redistest.StartT(t)
	ns := newFleet(t, srv.Addr, 7, append(gates, "router-v4"))
	old := oldBuild(t, srv.Addr)
	p := newPublisher(t, srv.Addr)
	pub := must(t)(p.PublishConfig(t.Context(), []byte(docV2)))
	acks, err := p.Wait(t.Context(), pub)
	if err != nil || len(acks.Applied) != 7 || len(acks.Refused) != 1 || acks.Refused[0].ID != "old" {
		t.Fatalf("acks: applied %d, refused %d, lagging %d, %v", len(acks.Applied), len(acks.Refused), len(acks.Lagging), err)
	}
	if r := old.s.Status().Rejected; r == nil || r.Version != pub.Version || !strings.Contains(r.Error, "unknown gate") {
		t.Fatalf("rejection %+v", r)
	}
	if got := old.gate(t, "checkout-v2").Status().Percent; got != 3 {
		t.Errorf("the refused document changed checkout-v2 to %v%%", got)
	}
	for _, n := range ns {
		if got := n.s.Status().Config.Version; got != "v2" {
			t.Errorf("%s runs %q", n.id, got)
		}
	}
}

// The stale 8th instance is listed stale within one heartbeat interval of
// its start; one kill through the store still stops all eight.
func TestStaleInstanceListedAndKilled(t *testing.T) {
	srv := redistest.StartT(t)
	p := newPublisher(t, srv.Addr)
	must(t)(p.PublishConfig(t.Context(), []byte(docV2)))
	ns := newFleet(t, srv.Addr, 7, append(gates, "router-v4"))
	start := time.Now()
	old := oldBuild(t, srv.Addr)
	store := newStore(t, srv.Addr)
	var m fleet.Member
	d := waitFor(t, hbInterval, "the stale instance in the fleet view", func() bool {
		v, err := fleet.List(t.Context(), store)
		if err != nil || len(v.Instances) != 8 {
			return false
		}
		m = v.Instances[0]
		return m.ID == "old" && m.ConfigDiffers && m.Refusing
	})
	t.Logf("stale instance listed %v after its start began (%v after the wait)", time.Since(start), d)
	if m.Config.Version != "v1" {
		t.Errorf("listed config %q, want v1", m.Config.Version)
	}

	pub := must(t)(p.Kill(t.Context(), "checkout-v2", "INC-440"))
	all := append(ns, old)
	kd := waitFor(t, 2*time.Second, "kill on all 8, the stale one too", func() bool { return allKilled(t, all, "checkout-v2") })
	t.Logf("kill applied on 8 of 8 (the stale one included) in %v", kd)
	acks, err := p.Wait(t.Context(), pub)
	if err != nil || len(acks.Applied) != 8 {
		t.Fatalf("acks applied %d, %v", len(acks.Applied), err)
	}
}

// A kill of a gate the instance knows applies while it refuses the current
// document, and a kill of a gate it does not have is reported as such.
func TestKillWhileRefusingDocument(t *testing.T) {
	srv := redistest.StartT(t)
	p := newPublisher(t, srv.Addr)
	old := oldBuild(t, srv.Addr)
	cur := startNode(t, srv.Addr, "cur", fleettest.Registry(t, append(gates, "router-v4")))
	doc := must(t)(p.PublishConfig(t.Context(), []byte(docV2)))
	waitFor(t, 2*time.Second, "refusal", func() bool {
		r := old.s.Status().Rejected
		return r != nil && r.Version == doc.Version
	})
	must(t)(p.Kill(t.Context(), "search-v3", "INC-1"))
	waitFor(t, 2*time.Second, "kill on both", func() bool { return allKilled(t, []*node{old, cur}, "search-v3") })
	if st := old.gate(t, "search-v3").Status(); st.Reason != "INC-1" || st.KilledBy != rollout.KilledByFleet {
		t.Errorf("old's search-v3: %+v", st)
	}
	rk := must(t)(p.Kill(t.Context(), "router-v4", "INC-2"))
	acks, err := p.Wait(t.Context(), rk)
	if err != nil || len(acks.Applied) != 2 || len(acks.NoGate) != 1 || acks.NoGate[0].ID != "old" {
		t.Fatalf("acks: applied %d, no gate %v, %v", len(acks.Applied), acks.NoGate, err)
	}
	if !cur.gate(t, "router-v4").Status().Killed {
		t.Error("router-v4 not killed where it exists")
	}
}

package redisfleet_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet"
	"github.com/blastradius/blastradius/fleet/redisfleet/internal/redistest"
	"github.com/blastradius/blastradius/rollout"
)

// The GuardStore contract on Redis: counts are kept per instance and
// sequence (an old or repeated sequence changes nothing), per gate, and
// can be deleted (fleet.CountsDeleter); a lease has one holder until it
// expires.
func TestGuardStoreContract(t *testing.T) {
	srv := redistest.StartT(t)
	ctx := t.Context()
	s := newStore(t, srv.Addr)
	for _, w := range []struct {
		name, id string
		seq      uint64
		value    string
	}{
		{"a", "i0", 2, "two"}, {"a", "i0", 1, "one"}, {"a", "i0", 2, "again"},
		{"a", "i1", 1, "x y"}, {"b", "i0", 7, "b"},
	} {
		if err := s.PutCounts(ctx, w.name, w.id, w.seq, []byte(w.value)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Counts(ctx, "a")
	if err != nil || len(got) != 2 || string(got["i0"]) != "two" || string(got["i1"]) != "x y" {
		t.Errorf("Counts(a) = %q, %v", got, err)
	}
	// A deleted instance's counts are gone, deleting them again is no
	// error, and a later write takes whatever its sequence.
	for range 2 {
		if err := s.DeleteCounts(ctx, "a", "i0"); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Counts(ctx, "a"); len(got) != 1 || got["i0"] != nil {
		t.Errorf("Counts(a) after the delete = %q", got)
	}
	if err := s.PutCounts(ctx, "a", "i0", 1, []byte("anew")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Counts(ctx, "a"); string(got["i0"]) != "anew" {
		t.Errorf("Counts(a) after a write at sequence 1 = %q", got)
	}
	if got, _ := s.Counts(ctx, "b"); len(got) != 1 || string(got["i0"]) != "b" {
		t.Errorf("Counts(b) = %q", got)
	}
	if ok, err := s.Lease(ctx, "g", "i0", 300*time.Millisecond); !ok || err != nil {
		t.Fatalf("first lease: %v, %v", ok, err)
	}
	if ok, _ := s.Lease(ctx, "g", "i1", time.Second); ok {
		t.Error("a second holder took a live lease")
	}
	if ok, _ := s.Lease(ctx, "g", "i0", 300*time.Millisecond); !ok {
		t.Error("the holder could not renew")
	}
	waitFor(t, 2*time.Second, "lease expiry", func() bool {
		ok, _ := s.Lease(ctx, "g", "i1", time.Second)
		return ok
	})
}

// guardedNode is an instance with a gate at 50% behind a Path whose new
// arm fails one call in failEvery, a Syncer and a fleet Guard.
type guardedNode struct {
	*node
	g         *fleet.Guard
	path      *rollout.Path[int, int]
	failEvery atomic.Int64
	calls     atomic.Int64
	// stopTraffic stops the calls and waits for the last; die stops the
	// guard and the calls without waiting, from any goroutine, the
	// guard's own included; stop does both and waits.
	stopTraffic, die, stop func()
}

// newGuardedNode starts a guarded instance whose Syncer syncs through addr
// and whose Guard pools its counts in store, nil meaning a store of its own
// on addr.
func newGuardedNode(t *testing.T, addr, id string, store fleet.GuardStore) *guardedNode {
	t.Helper()
	reg, _ := rollout.NewRegistry()
	gate, _ := rollout.New("checkout-v2", rollout.WithPercent(50))
	if err := reg.Register(gate); err != nil {
		t.Fatal(err)
	}
	gn := &guardedNode{node: startNode(t, addr, id, reg)}
	gn.failEvery.Store(100)
	errFail := errors.New("fail")
	gn.path, _ = rollout.NewPath(gate, rollout.Arms[int, int]{
		Old: func(_ context.Context, in int) (int, error) {
			if in%100 == 0 {
				return 0, errFail
			}
			return in, nil
		},
		New: func(_ context.Context, in int) (int, error) {
			if gn.calls.Add(1)%gn.failEvery.Load() == 0 {
				return 0, errFail
			}
			return in, nil
		},
	})
	if store == nil {
		store = newStore(t, addr)
	}
	g, err := fleet.NewGuard(store, gate, fleet.WithGuardInstanceID(id),
		fleet.WithBatchInterval(50*time.Millisecond), fleet.WithGuardLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	gn.g = g
	ctx, cancel := context.WithCancel(context.Background())
	tctx, stopCalls := context.WithCancel(ctx)
	var guard, traffic sync.WaitGroup
	guard.Go(func() { _ = g.Run(ctx) })
	traffic.Go(func() { // 100 keys every 5 ms
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-tctx.Done():
				return
			case <-tick.C:
			}
			for range 100 {
				i++
				_, _ = gn.path.Run(tctx, fmt.Sprintf("%s-%d", id, i), i)
			}
		}
	})
	gn.stopTraffic = func() { stopCalls(); traffic.Wait() }
	gn.die = cancel
	gn.stop = func() { cancel(); traffic.Wait(); guard.Wait() }
	t.Cleanup(gn.stop)
	return gn
}

// The lease holder dies in the middle of a test; the other instance takes
// the lease over, continues the test from the state in Redis (its looks go
// on counting), and when the new arm turns bad, kills the gate on every
// live instance through the store.
func TestGuardHolderDiesAnotherTakesOver(t *testing.T) {
	srv := redistest.StartT(t)
	ns := []*guardedNode{newGuardedNode(t, srv.Addr, "i0", nil), newGuardedNode(t, srv.Addr, "i1", nil)}
	var first, second *guardedNode
	waitFor(t, 10*time.Second, "a holder with 2 looks", func() bool {
		for i, n := range ns {
			if st := n.g.Status(); st.Holder && st.Looks >= 2 {
				first, second = n, ns[1-i]
				return true
			}
		}
		return false
	})
	looks := first.g.Status().Looks
	first.stop()
	waitFor(t, 5*time.Second, "the other holds with more looks", func() bool {
		st := second.g.Status()
		return st.Holder && st.Looks > looks
	})
	if st := second.gate(t, "checkout-v2").Status(); st.Killed {
		t.Fatalf("healthy rollout killed: %+v", st)
	}
	second.failEvery.Store(10)
	waitFor(t, 10*time.Second, "the fleet kill", func() bool { return second.gate(t, "checkout-v2").Status().Killed })
	st := second.gate(t, "checkout-v2").Status()
	if !strings.Contains(st.Reason, "fleet guard: new") || !strings.Contains(st.Reason, "pooled from 2 instances") {
		t.Errorf("kill reason %q", st.Reason)
	}
	t.Logf("took over after %d looks; kill: %s", looks, st.Reason)
}

// Redis hangs (SIGSTOP) under a guarded instance: the guard falls back to
// its own counts and says so, still kills the gate locally when the new arm
// turns bad, and judges the fleet again once Redis answers.
func TestGuardFallsBackWhileRedisHangs(t *testing.T) {
	srv := redistest.StartT(t)
	n := newGuardedNode(t, srv.Addr, "i0", nil)
	waitFor(t, 10*time.Second, "the fleet guard's first look", func() bool {
		st := n.g.Status()
		return st.Mode == fleet.ModeFleet && st.Holder && st.Looks >= 1
	})
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the local fallback", func() bool {
		st := n.g.Status()
		return st.Mode == fleet.ModeLocal && st.StoreError != ""
	})
	if st := n.gate(t, "checkout-v2").Status(); st.Killed {
		t.Fatalf("healthy rollout killed during the hang: %+v", st)
	}
	n.failEvery.Store(10)
	waitFor(t, 15*time.Second, "the local kill", func() bool { return n.gate(t, "checkout-v2").Status().Killed })
	if st := n.gate(t, "checkout-v2").Status(); !strings.Contains(st.Reason, "store unreachable, local verdict") {
		t.Errorf("kill reason %q, want the local verdict", st.Reason)
	}
	if err := srv.Continue(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the fleet guard again", func() bool { return n.g.Status().Mode == fleet.ModeFleet })
	// Back in the store, the instance reports its local kill in the fleet
	// history.
	store := newStore(t, srv.Addr)
	waitFor(t, 5*time.Second, "the local kill in the fleet history", func() bool {
		h, err := fleet.ReadHistory(t.Context(), store, "checkout-v2")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range h.Entries {
			if e.Kind == rollout.EventKill && e.Source == rollout.KilledByGuard && e.Instance == "i0" &&
				strings.Contains(e.Reason, "store unreachable, local verdict") {
				return true
			}
		}
		return false
	})
}

// pooledCounts reads the counts every instance's Guard wrote for gate and
// returns their sum and how many instances wrote them. The lease holder's
// test state lies beside them under "~guard".
func pooledCounts(t *testing.T, s *redisfleet.Store, gate string) (rollout.Counts, int) {
	t.Helper()
	all, err := s.Counts(t.Context(), gate)
	if err != nil {
		t.Fatal(err)
	}
	var sum rollout.Counts
	n := 0
	for id, v := range all {
		if id == "~guard" {
			continue
		}
		var c rollout.Counts
		if err := json.Unmarshal(v, &c); err != nil {
			t.Fatalf("counts of %s: %v", id, err)
		}
		sum = sum.Add(c)
		n++
	}
	return sum, n
}

// exceeds reports whether an arm of a counts more than the same arm of b.
func exceeds(a, b rollout.Counts) bool {
	over := func(x, y rollout.ArmCounts) bool {
		return x.Calls > y.Calls || x.Failures > y.Failures || x.Panics > y.Panics || x.Mismatches > y.Mismatches
	}
	return over(a.Old, b.Old) || over(a.New, b.New)
}

// A partition cuts one instance's Guard off Redis while both instances
// keep serving: its batches fail, it judges its own counts and says so, the
// other instance judges the fleet alone. After the partition heals it
// judges the fleet again, and the counts pooled in Redis equal exactly the
// sum of the instances' own counts: nothing served during the cut is lost,
// nothing is counted twice, and at no moment do they exceed it.
func TestGuardPartitionDuringBatching(t *testing.T) {
	srv := redistest.StartT(t)
	px := []*redistest.Proxy{redistest.NewProxyT(t, srv.Addr), redistest.NewProxyT(t, srv.Addr)}
	ns := []*guardedNode{
		newGuardedNode(t, srv.Addr, "i0", newStore(t, px[0].Addr)),
		newGuardedNode(t, srv.Addr, "i1", newStore(t, px[1].Addr)),
	}
	waitFor(t, 10*time.Second, "a holder with a look", func() bool {
		return ns[0].g.Status().Looks+ns[1].g.Status().Looks >= 1
	})
	cut, other := ns[0], ns[1]
	atCut := cut.gate(t, "checkout-v2").Counts()
	px[0].Cut()
	waitFor(t, 5*time.Second, "the cut instance falls back", func() bool {
		st := cut.g.Status()
		return st.Mode == fleet.ModeLocal && st.StoreError != ""
	})
	waitFor(t, 5*time.Second, "calls served on both sides of the cut", func() bool {
		st := other.g.Status()
		return cut.gate(t, "checkout-v2").Counts().New.Calls >= atCut.New.Calls+2000 &&
			st.Mode == fleet.ModeFleet && st.Holder
	})
	px[0].Heal()
	waitFor(t, 5*time.Second, "the fleet guard again", func() bool { return cut.g.Status().Mode == fleet.ModeFleet })
	for _, n := range ns {
		n.stopTraffic()
	}
	var sum rollout.Counts
	for _, n := range ns {
		sum = sum.Add(n.gate(t, "checkout-v2").Counts())
	}
	reader := newStore(t, srv.Addr)
	var pooled rollout.Counts
	var writers int
	d := waitFor(t, 5*time.Second, "pooled counts equal the instances' sum", func() bool {
		pooled, writers = pooledCounts(t, reader, "checkout-v2")
		if exceeds(pooled, sum) {
			t.Fatalf("pooled counts %+v exceed the instances' sum %+v: counted twice", pooled, sum)
		}
		return pooled == sum
	})
	if writers != len(ns) {
		t.Errorf("counts of %d writers in Redis, want %d", writers, len(ns))
	}
	for _, n := range ns {
		if st := n.gate(t, "checkout-v2").Status(); st.Killed {
			t.Errorf("%s: healthy rollout killed: %s", n.id, st.Reason)
		}
	}
	t.Logf("%d calls served by 2 instances, %d of the new arm by the cut one during the cut; pooled counts exact %v after the traffic stopped",
		sum.Old.Calls+sum.New.Calls, cut.gate(t, "checkout-v2").Counts().New.Calls-atCut.New.Calls, d)
}

// errDead is what a dead instance's store calls return.
var errDead = errors.New("the instance died")

// deathPlan kills the first guard instance that reaches a point of its
// verdict: "kill" (it has read the pooled counts and tripped, and is about
// to publish the kill) or "state" (it has published the kill and is about
// to store the test's state). It counts the kills published.
type deathPlan struct {
	at    string
	died  atomic.Pointer[string]
	kills atomic.Int64
}

// claim reports whether id is the one to die.
func (p *deathPlan) claim(id string) bool { return p.died.CompareAndSwap(nil, &id) }

// dyingStore is an instance's GuardStore that dies as its plan says: the
// instance stops there, and every later call of it fails.
type dyingStore struct {
	fleet.GuardStore
	plan *deathPlan
	id   string
	stop atomic.Pointer[func()] // stops the instance
	dead atomic.Bool
	puts atomic.Int64 // counts written
}

func (s *dyingStore) die() error {
	s.dead.Store(true)
	if stop := s.stop.Load(); stop != nil {
		(*stop)()
	}
	return errDead
}

func (s *dyingStore) Publish(ctx context.Context, key string, value []byte) (fleet.Head, error) {
	if s.dead.Load() {
		return fleet.Head{}, errDead
	}
	if !strings.HasPrefix(key, "kill/") {
		return s.GuardStore.Publish(ctx, key, value)
	}
	if s.plan.at == "kill" && s.plan.claim(s.id) {
		return fleet.Head{}, s.die()
	}
	h, err := s.GuardStore.Publish(ctx, key, value)
	if err == nil {
		s.plan.kills.Add(1)
	}
	return h, err
}

func (s *dyingStore) PutCounts(ctx context.Context, name, id string, seq uint64, value []byte) error {
	if s.dead.Load() {
		return errDead
	}
	if id == "~guard" && s.plan.at == "state" && s.plan.kills.Load() > 0 && s.plan.claim(s.id) {
		return s.die()
	}
	s.puts.Add(1)
	return s.GuardStore.PutCounts(ctx, name, id, seq, value)
}

func (s *dyingStore) Counts(ctx context.Context, name string) (map[string][]byte, error) {
	if s.dead.Load() {
		return nil, errDead
	}
	return s.GuardStore.Counts(ctx, name)
}

func (s *dyingStore) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if s.dead.Load() {
		return false, errDead
	}
	return s.GuardStore.Lease(ctx, name, holder, ttl)
}

// The lease holder dies in the middle of a verdict: after it read the
// pooled counts and tripped, before the kill was published; or after the
// kill was published, before the test's state was stored. Either way the
// other instance takes the lease over and the fleet ends with exactly one
// kill: the survivor publishes the verdict the dead one did not, or sees
// the published kill and does not publish another.
func TestGuardHolderDiesMidVerdict(t *testing.T) {
	for _, at := range []string{"kill", "state"} {
		t.Run(at, func(t *testing.T) {
			srv := redistest.StartT(t)
			plan := &deathPlan{at: at}
			ns := make([]*guardedNode, 2)
			stores := make([]*dyingStore, 2)
			for i := range ns {
				id := fmt.Sprintf("i%d", i)
				stores[i] = &dyingStore{GuardStore: newStore(t, srv.Addr), plan: plan, id: id}
				ns[i] = newGuardedNode(t, srv.Addr, id, stores[i])
				stores[i].stop.Store(&ns[i].die)
			}
			waitFor(t, 10*time.Second, "a holder with a look", func() bool {
				return ns[0].g.Status().Looks+ns[1].g.Status().Looks >= 1
			})
			for _, n := range ns {
				n.failEvery.Store(10)
			}
			waitFor(t, 10*time.Second, "a holder's death mid-verdict", func() bool { return plan.died.Load() != nil })
			dead := *plan.died.Load()
			survivor, store := ns[0], stores[0]
			if dead == "i0" {
				survivor, store = ns[1], stores[1]
			}
			d := waitFor(t, 5*time.Second, "the kill on the survivor", func() bool {
				return survivor.gate(t, "checkout-v2").Status().Killed
			})
			st := survivor.gate(t, "checkout-v2").Status()
			wantBy := "fleet-guard@" + dead // the dead one published it before dying
			if at == "kill" {
				wantBy = "fleet-guard@" + survivor.id
			}
			if !strings.Contains(st.Reason, "fleet guard: new") || st.KilledBy != rollout.KilledByFleet {
				t.Errorf("survivor's kill: %s by %s", st.Reason, st.KilledBy)
			}
			snap, err := newStore(t, srv.Addr).Read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range snap.Records {
				if r.Key == "kill/checkout-v2" && !strings.Contains(string(r.Value), `"by":"`+wantBy+`"`) {
					t.Errorf("kill record %s, want by %s", r.Value, wantBy)
				}
			}
			// The survivor keeps holding the lease and judging a killed
			// gate; it must not publish the kill again.
			holds := waitFor(t, 5*time.Second, "the survivor holds the lease", func() bool { return survivor.g.Status().Holder })
			puts := store.puts.Load()
			waitFor(t, 5*time.Second, "ten more batches of the survivor", func() bool { return store.puts.Load() >= puts+10 })
			if n := plan.kills.Load(); n != 1 {
				t.Errorf("%d kills published, want 1", n)
			}
			t.Logf("%s died at %q; survivor %s killed the gate %v later, holding the lease after %v", dead, at, survivor.id, d, holds)
		})
	}
}

// Redis is wiped (FLUSHALL) in the middle of a guarded rollout: the
// instances write their cumulative counts again, a guard takes the lease
// anew, a healthy rollout is not killed, a bad new arm still is, by the
// pooled counts of both instances, and the counts in Redis end equal to
// the instances' own: the wipe lost none.
func TestGuardStoreWiped(t *testing.T) {
	srv := redistest.StartT(t)
	ns := []*guardedNode{newGuardedNode(t, srv.Addr, "i0", nil), newGuardedNode(t, srv.Addr, "i1", nil)}
	waitFor(t, 10*time.Second, "a holder with a look", func() bool {
		return ns[0].g.Status().Looks+ns[1].g.Status().Looks >= 1
	})
	newCalls := func() (n int64) {
		for _, gn := range ns {
			n += gn.gate(t, "checkout-v2").Counts().New.Calls
		}
		return n
	}
	if err := newClient(t, srv.Addr).FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	atWipe := newCalls()
	reader := newStore(t, srv.Addr)
	waitFor(t, 5*time.Second, "both instances' counts in Redis again, a holder, 4000 more calls of the new arm", func() bool {
		_, writers := pooledCounts(t, reader, "checkout-v2")
		holder := ns[0].g.Status().Holder || ns[1].g.Status().Holder
		return writers == len(ns) && holder && newCalls() >= atWipe+4000
	})
	for _, gn := range ns {
		if st := gn.gate(t, "checkout-v2").Status(); st.Killed {
			t.Fatalf("%s: healthy rollout killed after the wipe: %s", gn.id, st.Reason)
		}
	}
	for _, gn := range ns {
		gn.failEvery.Store(10)
	}
	waitFor(t, 10*time.Second, "the fleet kill", func() bool {
		return ns[0].gate(t, "checkout-v2").Status().Killed && ns[1].gate(t, "checkout-v2").Status().Killed
	})
	if st := ns[0].gate(t, "checkout-v2").Status(); !strings.Contains(st.Reason, "fleet guard: new") || !strings.Contains(st.Reason, "pooled from 2 instances") {
		t.Errorf("kill reason %q", st.Reason)
	}
	for _, gn := range ns {
		gn.stopTraffic()
	}
	var sum rollout.Counts
	for _, gn := range ns {
		sum = sum.Add(gn.gate(t, "checkout-v2").Counts())
	}
	waitFor(t, 5*time.Second, "pooled counts equal the instances' sum", func() bool {
		pooled, _ := pooledCounts(t, reader, "checkout-v2")
		if exceeds(pooled, sum) {
			t.Fatalf("pooled counts %+v exceed the instances' sum %+v", pooled, sum)
		}
		return pooled == sum
	})
}

package redisfleet_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet/internal/redistest"
	"github.com/blastradius/blastradius/rollout"
)

// The GuardStore contract on Redis: counts are kept per instance and
// sequence (an old or repeated sequence changes nothing), per gate, and a
// lease has one holder until it expires.
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
	stop      func()
}

func newGuardedNode(t *testing.T, addr, id string) *guardedNode {
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
	g, err := fleet.NewGuard(newStore(t, addr), gate, fleet.WithGuardInstanceID(id),
		fleet.WithBatchInterval(50*time.Millisecond), fleet.WithGuardLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	gn.g = g
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = g.Run(ctx) }()
	go func() { // traffic: 100 keys every 5 ms
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for range 100 {
				i++
				_, _ = gn.path.Run(ctx, fmt.Sprintf("%s-%d", id, i), i)
			}
		}
	}()
	var once sync.Once
	gn.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(gn.stop)
	return gn
}

// The lease holder dies in the middle of a test; the other instance takes
// the lease over, continues the test from the state in Redis (its looks go
// on counting), and when the new arm turns bad, kills the gate on every
// live instance through the store.
func TestGuardHolderDiesAnotherTakesOver(t *testing.T) {
	srv := redistest.StartT(t)
	ns := []*guardedNode{newGuardedNode(t, srv.Addr, "i0"), newGuardedNode(t, srv.Addr, "i1")}
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
	n := newGuardedNode(t, srv.Addr, "i0")
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
}

package redisfleet_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet"
	"github.com/blastradius/blastradius/fleet/redisfleet/internal/redistest"
	"github.com/blastradius/blastradius/internal/fleettest"
)

var gates = []string{"checkout-v2", "search-v3"}

func TestStoreContract(t *testing.T) {
	srv := redistest.StartT(t)
	ctx := t.Context()
	s := newStore(t, srv.Addr, redisfleet.WithPrefix("svc-a"))
	other := newStore(t, srv.Addr, redisfleet.WithPrefix("svc-b"))

	snap, err := s.Read(ctx)
	if err != nil || snap.Head != (fleet.Head{}) || len(snap.Records) != 0 {
		t.Fatalf("empty store: %+v, %v", snap, err)
	}
	h1, err := s.Publish(ctx, "kill/a", []byte(`{"op":"kill","gate":"a"}`))
	if err != nil || h1.Epoch == "" || h1.Version != 1 {
		t.Fatalf("first publish: %+v, %v", h1, err)
	}
	h2, _ := s.Publish(ctx, "kill/a", []byte(`x y z`))
	h3, _ := s.Publish(ctx, "config", []byte("{}"))
	if h2 != (fleet.Head{Epoch: h1.Epoch, Version: 2}) || h3.Version != 3 {
		t.Fatalf("heads %+v %+v", h2, h3)
	}
	snap, err = s.Read(ctx)
	if err != nil || snap.Head != h3 || len(snap.Records) != 2 {
		t.Fatalf("read: %+v, %v", snap, err)
	}
	for _, r := range snap.Records {
		want := map[string]string{"kill/a": "x y z", "config": "{}"}[r.Key]
		if string(r.Value) != want || time.Since(r.Published).Abs() > time.Minute {
			t.Errorf("record %s = %q at %v", r.Key, r.Value, r.Published)
		}
	}
	if snap, _ := other.Read(ctx); snap.Version != 0 {
		t.Errorf("another prefix sees version %d", snap.Version)
	}

	h, err := s.Heartbeat(ctx, "i0", []byte(`{"id":"i0"}`), time.Minute)
	if err != nil || h != h3 {
		t.Fatalf("heartbeat: %+v, %v", h, err)
	}
	_, _ = s.Heartbeat(ctx, "gone", []byte(`{"id":"gone"}`), 0)
	hs, err := s.Heartbeats(ctx)
	if err != nil || len(hs) != 2 {
		t.Fatalf("heartbeats: %+v, %v", hs, err)
	}
	for _, hb := range hs {
		live := hb.TTL > 0
		if live != (hb.ID == "i0") || (live && hb.TTL > time.Minute) {
			t.Errorf("heartbeat %s: TTL %v", hb.ID, hb.TTL)
		}
	}
	_ = s.PutCounts(ctx, "a", "i0", 1, []byte("{}"))
	_ = s.AppendHistory(ctx, "a", []byte("{}"))
	_, _ = other.Heartbeat(ctx, "i0", []byte(`{}`), time.Minute)
	c := newClient(t, srv.Addr)
	all, err1 := c.Keys(ctx, "*").Result()
	matched, err2 := c.Keys(ctx, s.Pattern()).Result()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, k := range all {
		if strings.HasPrefix(k, "{svc-a}:") {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	slices.Sort(matched)
	if len(want) < 7 || !slices.Equal(matched, want) {
		t.Errorf("Pattern %q matches %q, want %q", s.Pattern(), matched, want)
	}
}

func TestRetentionDropsOldHeartbeats(t *testing.T) {
	srv := redistest.StartT(t)
	ctx := t.Context()
	s := newStore(t, srv.Addr, redisfleet.WithRetention(time.Millisecond))
	_, _ = s.Heartbeat(ctx, "old", []byte(`{}`), 0)
	waitFor(t, time.Second, "retention", func() bool {
		_, _ = s.Heartbeat(ctx, "new", []byte(`{}`), time.Minute)
		hs, _ := s.Heartbeats(ctx)
		return len(hs) == 1 && hs[0].ID == "new"
	})
}

// TestNewErrors proves that every invalid argument and option of New fails
// at construction with an error that wraps ErrInvalidConfig and names the
// option and its value, and that a nil option is skipped.
func TestNewErrors(t *testing.T) {
	c := newClient(t, "127.0.0.1:1")
	for _, tc := range []struct {
		opt  redisfleet.Option
		want string
	}{
		{redisfleet.WithPrefix(""), `redisfleet: invalid config: WithPrefix(""): must be non-empty and free of braces`},
		{redisfleet.WithPrefix("a{b}"), `redisfleet: invalid config: WithPrefix("a{b}"): must be non-empty and free of braces`},
		{redisfleet.WithRetention(0), "redisfleet: invalid config: WithRetention(0s): must be positive"},
		{redisfleet.WithHealthCheck(-time.Second), "redisfleet: invalid config: WithHealthCheck(-1s): must be positive"},
	} {
		_, err := redisfleet.New(c, tc.opt)
		if !errors.Is(err, redisfleet.ErrInvalidConfig) || err.Error() != tc.want {
			t.Errorf("err = %v, want %q wrapping ErrInvalidConfig", err, tc.want)
		}
	}
	if _, err := redisfleet.New(nil); !errors.Is(err, redisfleet.ErrInvalidConfig) {
		t.Errorf("nil client: err = %v", err)
	}
	if _, err := redisfleet.New(c, nil); err != nil {
		t.Errorf("nil option: %v", err)
	}
}

// Eight instances, each with its own connection, apply a kill.
func TestKillReachesEightInstances(t *testing.T) {
	srv := redistest.StartT(t)
	ns := newFleet(t, srv.Addr, 8, gates)
	p := newPublisher(t, srv.Addr)
	pub := must(t)(p.Kill(t.Context(), "checkout-v2", "INC-42"))
	d := waitFor(t, 2*time.Second, "kill on 8 instances", func() bool { return allKilled(t, ns, "checkout-v2") })
	t.Logf("publish to applied on 8 of 8: %v", d)
	acks, err := p.Wait(t.Context(), pub)
	if err != nil || len(acks.Applied) != 8 || !acks.Done() {
		t.Fatalf("acks: applied %d lagging %d, %v", len(acks.Applied), len(acks.Lagging), err)
	}
}

// A kill published while one instance is partitioned from Redis is
// applied within 1 s after the partition heals.
func TestPartitionKillAppliedAfterHeal(t *testing.T) {
	srv := redistest.StartT(t)
	proxy := redistest.NewProxyT(t, srv.Addr)
	cut := startNode(t, proxy.Addr, "cut", fleettest.Registry(t, gates))
	ok := startNode(t, srv.Addr, "ok", fleettest.Registry(t, gates))
	p := newPublisher(t, srv.Addr)

	proxy.Cut()
	partition := 2 * time.Second
	healAt := time.Now().Add(partition)
	must(t)(p.Kill(t.Context(), "checkout-v2", "INC-9"))
	waitFor(t, time.Second, "kill on the connected instance", func() bool { return ok.gate(t, "checkout-v2").Status().Killed })
	time.Sleep(time.Until(healAt)) // the partition lasts its full length
	if cut.gate(t, "checkout-v2").Status().Killed {
		t.Fatal("the partitioned instance applied the kill through a cut connection")
	}
	if !cut.s.Status().Stale {
		t.Error("the partitioned instance does not report itself stale")
	}
	proxy.Heal()
	d := waitFor(t, time.Second, "kill applied after the heal", func() bool { return cut.gate(t, "checkout-v2").Status().Killed })
	t.Logf("heal to applied: %v", d)
}

// Two operators publish at once: no version is lost or given twice.
func TestTwoOperatorsAtOnce(t *testing.T) {
	srv := redistest.StartT(t)
	n := startNode(t, srv.Addr, "i0", fleettest.Registry(t, gates))
	var wg sync.WaitGroup
	var mu sync.Mutex
	versions := map[uint64]int{}
	for op := range 2 {
		p := newPublisher(t, srv.Addr)
		wg.Go(func() {
			for i := range 100 {
				pub, err := p.SetPercent(t.Context(), gates[op], float64(i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				versions[pub.Version]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for v := uint64(1); v <= 200; v++ {
		if versions[v] != 1 {
			t.Fatalf("version %d published %d times", v, versions[v])
		}
	}
	waitFor(t, 2*time.Second, "apply version 200", func() bool { return n.s.Status().Applied.Version == 200 })
	for _, g := range gates {
		if p := n.gate(t, g).Status().Percent; p != 99 {
			t.Errorf("%s at %v%%, want 99", g, p)
		}
	}
}

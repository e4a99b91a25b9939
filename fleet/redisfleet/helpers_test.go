package redisfleet_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet"
	"github.com/blastradius/blastradius/internal/fleettest"
	"github.com/blastradius/blastradius/rollout"
)

// Timings of the instances in these tests: fast enough to keep each test
// short, slow enough for a loaded 2-core machine.
const (
	hbInterval = 300 * time.Millisecond
	staleAfter = time.Second
	callTimout = 300 * time.Millisecond
	reconcile  = 5 * time.Second
)

// newClient returns a client of its own (its own connections) to addr.
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		MaxRetries:            -1,
		PoolSize:              4,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newStore(t testing.TB, addr string, opts ...redisfleet.Option) *redisfleet.Store {
	t.Helper()
	opts = append([]redisfleet.Option{redisfleet.WithHealthCheck(time.Second)}, opts...)
	s, err := redisfleet.New(newClient(t, addr), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type node struct {
	id   string
	reg  *rollout.Registry
	s    *fleet.Syncer
	stop func()
}

func (n *node) gate(t testing.TB, name string) *rollout.Gate {
	t.Helper()
	g, ok := n.reg.Gate(name)
	if !ok {
		t.Fatalf("%s has no gate %q", n.id, name)
	}
	return g
}

// startNode runs a Syncer for reg on its own client to addr; it stops in
// Cleanup.
func startNode(t testing.TB, addr, id string, reg *rollout.Registry, opts ...fleet.Option) *node {
	t.Helper()
	base := []fleet.Option{
		fleet.WithInstanceID(id), fleet.WithHost("host-" + id), fleet.WithBuild("test"),
		fleet.WithHeartbeatInterval(hbInterval), fleet.WithStaleAfter(staleAfter),
		fleet.WithTimeout(callTimout), fleet.WithReconcileInterval(reconcile),
	}
	s, err := fleet.New(newStore(t, addr), reg, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{id: id, reg: reg, s: s, stop: fleettest.Run(t, s)}
	select {
	case <-s.Ready():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s not ready after 5s", id)
	}
	return n
}

func newFleet(t testing.TB, addr string, n int, gates []string) []*node {
	t.Helper()
	ns := make([]*node, n)
	for i := range ns {
		ns[i] = startNode(t, addr, fmt.Sprintf("i%d", i), fleettest.Registry(t, gates))
	}
	return ns
}

func newPublisher(t testing.TB, addr string) *fleet.Publisher {
	t.Helper()
	p, err := fleet.NewPublisher(newStore(t, addr), fleet.WithActor("oncall@test"), fleet.WithPollInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func must(t testing.TB) func(fleet.Published, error) fleet.Published {
	return func(p fleet.Published, err error) fleet.Published {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// waitFor polls cond every 2 ms until it holds or bound passes, and returns
// how long it took; past the bound it fails the test.
func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// allKilled reports whether every node has gate killed.
func allKilled(t testing.TB, ns []*node, gate string) bool {
	for _, n := range ns {
		if !n.gate(t, gate).Status().Killed {
			return false
		}
	}
	return true
}

package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/internal/fleettest"
	"github.com/blastradius/blastradius/rollout"
)

// Test timings: a heartbeat a second, a reconcile every 10 s (so a test
// that passes before 8 s did not need it), stale after 3 s.
const (
	testHeartbeat = time.Second
	testReconcile = 10 * time.Second
	testStale     = 3 * time.Second
	testTimeout   = 500 * time.Millisecond
)

// node is one instance: a registry with gates, synced by a Syncer.
type node struct {
	reg  *rollout.Registry
	s    *fleet.Syncer
	stop func()
}

func (n *node) gate(t *testing.T, name string) *rollout.Gate {
	t.Helper()
	g, ok := n.reg.Gate(name)
	if !ok {
		t.Fatalf("no gate %q", name)
	}
	return g
}

// newNode builds an instance with gates at 100% and starts its Syncer; it
// stops in Cleanup (inside the synctest bubble that called it).
func newNode(t *testing.T, store fleet.Store, id string, gates []string, opts ...fleet.Option) *node {
	t.Helper()
	reg := fleettest.Registry(t, gates)
	return startNode(t, store, id, reg, opts...)
}

func startNode(t *testing.T, store fleet.Store, id string, reg *rollout.Registry, opts ...fleet.Option) *node {
	t.Helper()
	base := []fleet.Option{
		fleet.WithInstanceID(id), fleet.WithHost("host-" + id), fleet.WithBuild("test"),
		fleet.WithHeartbeatInterval(testHeartbeat), fleet.WithReconcileInterval(testReconcile),
		fleet.WithStaleAfter(testStale), fleet.WithTimeout(testTimeout),
	}
	s, err := fleet.New(store, reg, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return &node{reg: reg, s: s, stop: fleettest.Run(t, s)}
}

// newFleet starts n instances named i0, i1, ... with the given gates.
func newFleet(t *testing.T, store fleet.Store, n int, gates []string, opts ...fleet.Option) []*node {
	t.Helper()
	ns := make([]*node, n)
	for i := range ns {
		ns[i] = newNode(t, store, fmt.Sprintf("i%d", i), gates, opts...)
	}
	return ns
}

func newPublisher(t *testing.T, store fleet.Store) *fleet.Publisher {
	t.Helper()
	p, err := fleet.NewPublisher(store, fleet.WithActor("oncall@test"), fleet.WithPollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// faultyStore wraps a store with the faults of a network and a server:
// a partition (every call fails and subscriptions are cut), a hang (every
// call blocks until the hang ends or its context is done) and lost
// notifications.
type faultyStore struct {
	inner fleet.Store

	mu       sync.Mutex
	down     bool
	hung     chan struct{} // non-nil while hung; closed when the hang ends
	cut      chan struct{} // closed when a partition starts
	dropNote bool
	calls    int
}

var errPartitioned = errors.New("test: partitioned")

func newFaulty(inner fleet.Store) *faultyStore {
	return &faultyStore{inner: inner, cut: make(chan struct{})}
}

func (f *faultyStore) partition() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	close(f.cut)
}

func (f *faultyStore) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = false
	f.cut = make(chan struct{})
}

func (f *faultyStore) hang() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hung = make(chan struct{})
}

func (f *faultyStore) unhang() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.hung)
	f.hung = nil
}

func (f *faultyStore) dropNotifications(drop bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropNote = drop
}

// enter applies the current fault to a call.
func (f *faultyStore) enter(ctx context.Context) error {
	f.mu.Lock()
	f.calls++
	down, hung := f.down, f.hung
	f.mu.Unlock()
	if hung != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-hung:
		}
	}
	if down {
		return errPartitioned
	}
	return nil
}

func (f *faultyStore) Publish(ctx context.Context, key string, value []byte) (fleet.Head, error) {
	if err := f.enter(ctx); err != nil {
		return fleet.Head{}, err
	}
	return f.inner.Publish(ctx, key, value)
}

func (f *faultyStore) Read(ctx context.Context) (fleet.Snapshot, error) {
	if err := f.enter(ctx); err != nil {
		return fleet.Snapshot{}, err
	}
	return f.inner.Read(ctx)
}

func (f *faultyStore) Heartbeat(ctx context.Context, id string, value []byte, ttl time.Duration) (fleet.Head, error) {
	if err := f.enter(ctx); err != nil {
		return fleet.Head{}, err
	}
	return f.inner.Heartbeat(ctx, id, value, ttl)
}

func (f *faultyStore) Heartbeats(ctx context.Context) ([]fleet.Heartbeat, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	return f.inner.Heartbeats(ctx)
}

func (f *faultyStore) Subscribe(ctx context.Context, notify func(fleet.Event)) error {
	if err := f.enter(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	cut := f.cut
	f.mu.Unlock()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-cut:
			cancel()
		case <-sctx.Done():
		}
	}()
	err := f.inner.Subscribe(sctx, func(e fleet.Event) {
		f.mu.Lock()
		drop := f.dropNote && e == fleet.Changed
		f.mu.Unlock()
		if !drop {
			notify(e)
		}
	})
	if ctx.Err() != nil {
		return err
	}
	return errPartitioned
}

func (f *faultyStore) guardStore() fleet.GuardStore { return f.inner.(fleet.GuardStore) }

func (f *faultyStore) PutCounts(ctx context.Context, name, id string, seq uint64, value []byte) error {
	if err := f.enter(ctx); err != nil {
		return err
	}
	return f.guardStore().PutCounts(ctx, name, id, seq, value)
}

func (f *faultyStore) Counts(ctx context.Context, name string) (map[string][]byte, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	return f.guardStore().Counts(ctx, name)
}

func (f *faultyStore) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := f.enter(ctx); err != nil {
		return false, err
	}
	return f.guardStore().Lease(ctx, name, holder, ttl)
}

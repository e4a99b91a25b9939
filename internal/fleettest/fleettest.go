// Package fleettest holds what the tests of fleet, of its store drivers and
// of the console share: registries of gates to sync, and Syncers and Guards
// run until the test ends.
package fleettest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/blastradius/blastradius/rollout"
)

// Registry returns a registry with a gate at 100% for every name in gates.
func Registry(t testing.TB, gates []string) *rollout.Registry {
	t.Helper()
	reg, err := rollout.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range gates {
		g, err := rollout.New(name, rollout.WithPercent(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Register(g); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// Runner is what Run runs: a fleet.Syncer or a fleet.Guard.
type Runner interface {
	Run(ctx context.Context) error
}

// Run runs r on its own goroutine and returns the func that stops it, as
// the death of its process would: it cancels Run and fails the test unless
// Run returned context.Canceled. Stop runs once, however often it is
// called, and in Cleanup at the latest (inside the synctest bubble, if Run
// was called in one).
func Run(t testing.TB, r Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("%T.Run returned %v, want context.Canceled", r, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

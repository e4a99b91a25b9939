// Package fleettest holds what the tests of fleet and of its store drivers
// share: registries of gates to sync.
package fleettest

import (
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

package openfeature_test

import (
	"context"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	brof "github.com/blastradius/blastradius/openfeature"
	"github.com/blastradius/blastradius/rollout"
)

// start registers a provider of reg with a new, isolated SDK API and
// returns the API and a client of it. The caller shuts the API down.
func start(t testing.TB, reg *rollout.Registry, opts ...brof.Option) (*openfeature.EvaluationAPI, *openfeature.Client) {
	t.Helper()
	p, err := brof.New(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return api, api.NewClient()
}

// shutdown shuts api down, which stops the provider.
func shutdown(t testing.TB, api *openfeature.EvaluationAPI) {
	t.Helper()
	if err := api.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func newRegistry(t testing.TB) *rollout.Registry {
	t.Helper()
	reg, err := rollout.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// addGate registers a new gate named name in reg.
func addGate(t testing.TB, reg *rollout.Registry, name string, opts ...rollout.Option) *rollout.Gate {
	t.Helper()
	g, err := rollout.New(name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(g); err != nil {
		t.Fatal(err)
	}
	return g
}

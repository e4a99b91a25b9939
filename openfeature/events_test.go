package openfeature_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/blastradius/blastradius/fleet"
	brof "github.com/blastradius/blastradius/openfeature"
	"github.com/blastradius/blastradius/rollout"
)

// handler records the events of the types given to listen that an SDK
// API delivers to its handlers.
type handler struct {
	ch chan event
}

type event struct {
	typ openfeature.EventType
	openfeature.EventDetails
}

func listen(api *openfeature.EvaluationAPI, types ...openfeature.EventType) *handler {
	h := &handler{ch: make(chan event, 64)}
	for _, typ := range types {
		f := func(d openfeature.EventDetails) { h.ch <- event{typ, d} }
		api.AddHandler(typ, &f)
	}
	return h
}

// take returns the events delivered so far. Call it in a synctest bubble
// after synctest.Wait, when every delivery has run.
func (h *handler) take() []event {
	var es []event
	for {
		select {
		case e := <-h.ch:
			es = append(es, e)
		default:
			return es
		}
	}
}

// changedFlags is the union of the flags of es, which must all be
// configuration changes from the provider.
func changedFlags(t *testing.T, es []event) []string {
	t.Helper()
	var flags []string
	for _, e := range es {
		if e.typ != openfeature.ProviderConfigChange || e.ProviderName != brof.Name {
			t.Errorf("event %s from %q, want %s from %q", e.typ, e.ProviderName, openfeature.ProviderConfigChange, brof.Name)
		}
		flags = append(flags, e.FlagChanges...)
	}
	slices.Sort(flags)
	return slices.Compact(flags)
}

// TestConfigurationChanged: each change of a gate reaches an SDK event
// handler as PROVIDER_CONFIGURATION_CHANGED naming the gate.
func TestConfigurationChanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := newRegistry(t)
		g := addGate(t, reg, "checkout-v2", rollout.WithPercent(5))
		addGate(t, reg, "search-v3")
		api, client := start(t, reg)
		defer shutdown(t, api)
		h := listen(api, openfeature.ProviderConfigChange)
		synctest.Wait()
		if es := h.take(); len(es) != 0 {
			t.Fatalf("events before any change: %v", es)
		}

		steps := []struct {
			name   string
			change func()
			want   []string
		}{
			{"kill", func() { g.Kill("INC-1") }, []string{"checkout-v2"}},
			{"kill again", func() { g.Kill("INC-1") }, nil}, // no change, no event
			{"resume", g.Resume, []string{"checkout-v2"}},
			{"percent", func() {
				if err := g.SetPercent(50); err != nil {
					t.Fatal(err)
				}
			}, []string{"checkout-v2"}},
			{"config", func() {
				if _, err := reg.LoadConfig(strings.NewReader(
					`{"version":"v2","gates":[{"name":"checkout-v2","percent":10},{"name":"search-v3","killed":true}]}`)); err != nil {
					t.Fatal(err)
				}
			}, []string{"checkout-v2", "search-v3"}},
			{"register", func() { addGate(t, reg, "cart-v4") }, []string{"cart-v4"}},
		}
		for _, s := range steps {
			s.change()
			synctest.Wait()
			es := h.take()
			if got := changedFlags(t, es); !slices.Equal(got, s.want) {
				t.Errorf("%s: flags changed %q, want %q (events %v)", s.name, got, s.want, es)
			}
			if client.State() != openfeature.ReadyState {
				t.Errorf("%s: state %s, want READY", s.name, client.State())
			}
			if s.name == "config" && !slices.ContainsFunc(es, func(e event) bool { return strings.HasSuffix(e.Message, ": v2") }) {
				t.Errorf("config: no event names version v2: %v", es)
			}
		}
	})
}

// TestShutdownStopsEvents: after the API shuts the provider down, a change
// sends nothing, and the provider's goroutine is gone (goleak, synctest).
func TestShutdownStopsEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := newRegistry(t)
		g := addGate(t, reg, "checkout-v2", rollout.WithPercent(5))
		p, err := brof.New(reg)
		if err != nil {
			t.Fatal(err)
		}
		api := isolated.NewAPI()
		if err := api.SetProviderAndWait(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		shutdown(t, api)
		g.Kill("INC-2") // the registry calls nothing of p any more
		synctest.Wait()
		select {
		case e := <-p.EventChannel():
			t.Fatalf("event after Shutdown: %v", e)
		default:
		}
		p.Shutdown() // again: nothing to stop
	})
}

// TestFleetStaleReady: with WithFleet, the SDK sees PROVIDER_STALE when the
// Syncer goes stale, keeps evaluating, and PROVIDER_READY when it recovers.
func TestFleetStaleReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := newRegistry(t)
		g := addGate(t, reg, "checkout-v2", rollout.WithPercent(100))
		s, err := fleet.New(fleet.NewMemoryStore(), reg, fleet.WithStaleAfter(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		api, client := start(t, reg, brof.WithFleet(s))
		defer shutdown(t, api)
		h := listen(api, openfeature.ProviderStale, openfeature.ProviderReady)
		synctest.Wait()
		if es := h.take(); len(es) != 1 || es[0].typ != openfeature.ProviderReady {
			t.Fatalf("on registration: %v, want the READY of the initialization", es)
		}

		// The Syncer never reached its store: stale after 10 s.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if es := h.take(); len(es) != 0 {
			t.Fatalf("events before the Syncer is stale: %v", es)
		}
		time.Sleep(brof.FleetPollInterval)
		synctest.Wait()
		if es := h.take(); len(es) != 1 || es[0].typ != openfeature.ProviderStale {
			t.Fatalf("events once stale: %v, want one PROVIDER_STALE", es)
		}
		if client.State() != openfeature.StaleState {
			t.Errorf("state %s, want STALE", client.State())
		}
		// Stale is served: the last good state still answers.
		if d, err := client.BooleanValueDetails(context.Background(), "checkout-v2", false, openfeature.NewEvaluationContext("u", nil)); err != nil || !d.Value {
			t.Errorf("evaluation while stale: %v, %v", d.Value, err)
		}
		// A change while stale leaves the state stale.
		g.Kill("INC-3")
		synctest.Wait()
		if client.State() != openfeature.StaleState {
			t.Errorf("state after a change while stale: %s, want STALE", client.State())
		}

		// The Syncer reaches the store.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		<-s.Ready()
		time.Sleep(brof.FleetPollInterval)
		synctest.Wait()
		if es := h.take(); len(es) != 1 || es[0].typ != openfeature.ProviderReady {
			t.Errorf("events once the store is reached: %v, want one PROVIDER_READY", es)
		}
		if client.State() != openfeature.ReadyState {
			t.Errorf("state %s, want READY", client.State())
		}
		cancel()
		<-done
	})
}

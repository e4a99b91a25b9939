package console_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/internal/fleettest"
	"github.com/blastradius/blastradius/rollout"
)

const token = "Bearer s3cret"

func authorize(r *http.Request) bool { return r.Header.Get("Authorization") == token }

// newRegistry returns a registry with three gates: checkout-v2 at 5%,
// search-v3 on a schedule with a guard, legacy-ui past its expiry.
func newRegistry(t testing.TB) *rollout.Registry {
	t.Helper()
	mp := rollout.WithMeterProvider(noop.NewMeterProvider())
	reg, err := rollout.NewRegistry(mp)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts []rollout.Option
	}{
		{"checkout-v2", []rollout.Option{rollout.WithPercent(5), rollout.WithOwner("payments"),
			rollout.WithExpiry(time.Now().Add(90 * 24 * time.Hour))}},
		{"search-v3", []rollout.Option{rollout.WithGuard(), rollout.WithSchedule(
			rollout.Step{Percent: 1, Hold: time.Hour}, rollout.Step{Percent: 50, Hold: time.Hour}, rollout.Step{Percent: 100})}},
		{"legacy-ui", []rollout.Option{rollout.WithPercent(100), rollout.WithExpiry(time.Now().Add(-48 * time.Hour))}},
	} {
		g, err := rollout.New(c.name, append(c.opts, mp)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Register(g); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func gate(t testing.TB, reg *rollout.Registry, name string) *rollout.Gate {
	t.Helper()
	g, ok := reg.Gate(name)
	if !ok {
		t.Fatalf("no gate %q", name)
	}
	return g
}

// req is a request to the console, authorized unless auth is false.
type req struct {
	method, path string
	form         url.Values
	header       http.Header
	noAuth       bool
}

func serve(t testing.TB, h http.Handler, q req) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if q.form != nil {
		r = httptest.NewRequest(q.method, q.path, strings.NewReader(q.form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(q.method, q.path, nil)
	}
	if !q.noAuth {
		r.Header.Set("Authorization", token)
	}
	for k, vs := range q.header {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func get(t testing.TB, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	return serve(t, h, req{method: http.MethodGet, path: path})
}

func post(t testing.TB, h http.Handler, path string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	return serve(t, h, req{method: http.MethodPost, path: path, form: form})
}

func wantStatus(t testing.TB, w *httptest.ResponseRecorder, code int) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d; body:\n%s", w.Code, code, w.Body)
	}
}

func wantBody(t testing.TB, w *httptest.ResponseRecorder, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(w.Body.String(), s) {
			t.Errorf("body lacks %q", s)
		}
	}
	if t.Failed() {
		t.Logf("body:\n%s", w.Body)
	}
}

// instance is a registry synced to a fleet store by a running Syncer,
// stopped in Cleanup (inside the synctest bubble that started it).
type instance struct {
	reg  *rollout.Registry
	s    *fleet.Syncer
	stop func()
}

func startInstance(t *testing.T, store fleet.Store, id string, reg *rollout.Registry) *instance {
	t.Helper()
	s, err := fleet.New(store, reg, fleet.WithInstanceID(id), fleet.WithHost("host-"+id), fleet.WithBuild("v1.4.2"),
		fleet.WithHeartbeatInterval(time.Second), fleet.WithStaleAfter(3*time.Second), fleet.WithTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return &instance{reg: reg, s: s, stop: fleettest.Run(t, s)}
}

var errDown = errors.New("dial tcp 10.0.0.7:6379: connect: connection refused")

// downStore is a fleet store that cannot be reached.
type downStore struct{}

func (downStore) Publish(context.Context, string, []byte) (fleet.Head, error) {
	return fleet.Head{}, errDown
}
func (downStore) Read(context.Context) (fleet.Snapshot, error) { return fleet.Snapshot{}, errDown }
func (downStore) Subscribe(ctx context.Context, _ func(fleet.Event)) error {
	return errDown
}
func (downStore) Heartbeat(context.Context, string, []byte, time.Duration) (fleet.Head, error) {
	return fleet.Head{}, errDown
}
func (downStore) Heartbeats(context.Context) ([]fleet.Heartbeat, error) { return nil, errDown }

// hungStore is a fleet store that never answers: every call blocks until
// its context is done.
type hungStore struct{}

func (hungStore) Publish(ctx context.Context, _ string, _ []byte) (fleet.Head, error) {
	<-ctx.Done()
	return fleet.Head{}, ctx.Err()
}
func (hungStore) Read(ctx context.Context) (fleet.Snapshot, error) {
	<-ctx.Done()
	return fleet.Snapshot{}, ctx.Err()
}
func (hungStore) Subscribe(ctx context.Context, _ func(fleet.Event)) error {
	<-ctx.Done()
	return ctx.Err()
}
func (hungStore) Heartbeat(ctx context.Context, _ string, _ []byte, _ time.Duration) (fleet.Head, error) {
	<-ctx.Done()
	return fleet.Head{}, ctx.Err()
}
func (hungStore) Heartbeats(ctx context.Context) ([]fleet.Heartbeat, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

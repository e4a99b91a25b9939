package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet"
	"github.com/blastradius/blastradius/fleet/redisfleet/internal/redistest"
	"github.com/blastradius/blastradius/rollout"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m)
}

// instance runs a Syncer with gates on its own client to addr.
func instance(t *testing.T, addr, id string, gates ...string) *rollout.Registry {
	t.Helper()
	reg, _ := rollout.NewRegistry()
	for _, name := range gates {
		g, _ := rollout.New(name, rollout.WithPercent(100))
		_ = reg.Register(g)
	}
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	store, err := redisfleet.New(client, redisfleet.WithPrefix("smoke"), redisfleet.WithHealthCheck(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s, err := fleet.New(store, reg, fleet.WithInstanceID(id), fleet.WithHost("h-"+id), fleet.WithBuild("b1"),
		fleet.WithHeartbeatInterval(time.Second), fleet.WithTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-s.Ready():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s not ready", id)
	}
	return reg
}

func cmd(t *testing.T, addr string, args ...string) (int, string) {
	t.Helper()
	var out, errw bytes.Buffer
	code := run(t.Context(), append([]string{"-redis", addr, "-prefix", "smoke", "-actor", "oncall", "-wait", "2s"}, args...),
		strings.NewReader(""), &out, &errw)
	t.Logf("blastradius %s → %d\n%s%s", strings.Join(args, " "), code, out.String(), errw.String())
	return code, out.String() + errw.String()
}

func TestKillResumeSetAndFleet(t *testing.T) {
	srv := redistest.StartT(t)
	regs := []*rollout.Registry{instance(t, srv.Addr, "api-1", "checkout-v2"), instance(t, srv.Addr, "api-2", "checkout-v2")}

	code, out := cmd(t, srv.Addr, "kill", "checkout-v2", "-reason", "INC-42")
	if code != 0 || !strings.Contains(out, "applied on 2/2 instances") || !strings.Contains(out, `killed checkout-v2 (reason "INC-42"): version 1`) {
		t.Fatalf("kill: %d %q", code, out)
	}
	for _, reg := range regs {
		if g, _ := reg.Gate("checkout-v2"); !g.Status().Killed {
			t.Fatal("gate not killed")
		}
	}
	if code, out := cmd(t, srv.Addr, "set", "checkout-v2", "12.5"); code != 0 || !strings.Contains(out, "applied on 2/2") {
		t.Fatalf("set: %d %q", code, out)
	}
	if code, out := cmd(t, srv.Addr, "resume", "checkout-v2"); code != 0 || !strings.Contains(out, "applied on 2/2") {
		t.Fatalf("resume: %d %q", code, out)
	}
	for _, reg := range regs {
		if g, _ := reg.Gate("checkout-v2"); g.Status().Killed || g.Status().Percent != 12.5 {
			t.Fatalf("gate %+v", g.Status())
		}
	}
	code, out = cmd(t, srv.Addr, "fleet")
	if code != 0 || !strings.Contains(out, "2 live, 0 with problems") || !strings.Contains(out, "api-1") {
		t.Fatalf("fleet: %d %q", code, out)
	}
}

func TestPublishRefusedAndStaleFleet(t *testing.T) {
	srv := redistest.StartT(t)
	instance(t, srv.Addr, "api-1", "checkout-v2", "router-v4")
	instance(t, srv.Addr, "api-old", "checkout-v2")
	doc := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(doc, []byte(`{"version":"2026-11-22.1","gates":[{"name":"router-v4","percent":1}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := cmd(t, srv.Addr, "publish", doc)
	if code != 1 || !strings.Contains(out, "applied on 1/2") || !strings.Contains(out, "REFUSED") || !strings.Contains(out, "api-old") {
		t.Fatalf("publish: %d %q", code, out)
	}
	code, out = cmd(t, srv.Addr, "fleet")
	if code != 1 || !strings.Contains(out, "refuses config version 1") || !strings.Contains(out, "1 with problems") {
		t.Fatalf("fleet: %d %q", code, out)
	}
	code, out = cmd(t, srv.Addr, "kill", "router-v4", "-reason", "INC-7")
	if code != 0 || !strings.Contains(out, "no gate router-v4") {
		t.Fatalf("kill of a gate api-old lacks: %d %q", code, out)
	}
}

func TestLaggingInstanceExitsNonZero(t *testing.T) {
	srv := redistest.StartT(t)
	proxy := redistest.NewProxyT(t, srv.Addr)
	instance(t, srv.Addr, "api-1", "checkout-v2")
	instance(t, proxy.Addr, "api-cut", "checkout-v2")
	proxy.Cut()
	var out, errw bytes.Buffer
	code := run(t.Context(), []string{"-redis", srv.Addr, "-prefix", "smoke", "-wait", "300ms", "kill", "checkout-v2", "-reason", "INC-1"},
		strings.NewReader(""), &out, &errw)
	if code != 1 || !strings.Contains(out.String(), "LAGGING  api-cut") || !strings.Contains(out.String(), "did not apply it within 300ms") {
		t.Fatalf("%d %q %q", code, out.String(), errw.String())
	}
}

func TestNoLiveInstance(t *testing.T) {
	srv := redistest.StartT(t)
	code, out := cmd(t, srv.Addr, "kill", "checkout-v2", "-reason", "x")
	if code != 1 || !strings.Contains(out, "NO LIVE INSTANCE") {
		t.Fatalf("%d %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-redis", "127.0.0.1:1"},
		{"-redis", "127.0.0.1:1", "launch"},
		{"-redis", "127.0.0.1:1", "kill", "g"},
		{"-redis", "127.0.0.1:1", "kill"},
		{"-redis", "127.0.0.1:1", "set", "g", "lots"},
		{"-redis", "127.0.0.1:1", "resume", "g", "-reason", "x"},
		{"-redis", "127.0.0.1:1", "fleet", "extra"},
		{"-redis", "redis://[bad", "fleet"},
	} {
		var out, errw bytes.Buffer
		if code := run(t.Context(), args, strings.NewReader(""), &out, &errw); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet"
	"github.com/blastradius/blastradius/fleet/redisfleet/internal/redistest"
	"github.com/blastradius/blastradius/internal/fleettest"
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
	reg := fleettest.Registry(t, gates)
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
	fleettest.Run(t, s)
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
		{"-redis", "127.0.0.1:1", "history"},
		{"-redis", "127.0.0.1:1", "history", "a", "b"},
		{"-redis", "127.0.0.1:1", "exposure", "g", "-from", "yesterday"},
		{"-redis", "127.0.0.1:1", "exposure", "g", "-to", "-2h"},
		{"-redis", "127.0.0.1:1", "was-enabled", "g", "k"},
		{"-redis", "127.0.0.1:1", "was-enabled", "g", "k", "noon"},
		{"-redis", "redis://[bad", "fleet"},
	} {
		var out, errw bytes.Buffer
		if code := run(t.Context(), args, strings.NewReader(""), &out, &errw); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// guardedInstance runs a Syncer and a fleet Guard (reported in its
// heartbeat) for a gate at 50% whose new arm fails one call in ten, with
// traffic; all stop in Cleanup.
func guardedInstance(t *testing.T, addr, id string) *rollout.Gate {
	t.Helper()
	reg, _ := rollout.NewRegistry()
	gate, _ := rollout.New("checkout-v2", rollout.WithPercent(50))
	_ = reg.Register(gate)
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	store, err := redisfleet.New(client, redisfleet.WithPrefix("smoke"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := fleet.New(store, reg, fleet.WithInstanceID(id), fleet.WithHeartbeatInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	g, err := fleet.NewGuard(store, gate, fleet.WithSyncer(s), fleet.WithBatchInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	errBad := errors.New("null account")
	path, _ := rollout.NewPath(gate, rollout.Arms[int, int]{
		Old: func(_ context.Context, i int) (int, error) { return i, nil },
		New: func(_ context.Context, i int) (int, error) {
			if i%10 == 0 {
				return 0, errBad
			}
			return i, nil
		},
	})
	fleettest.Run(t, s)
	fleettest.Run(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ctx.Err() == nil; {
			for range 20 {
				i++
				_, _ = path.Run(ctx, fmt.Sprintf("k-%s-%d", id, i), i)
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	select {
	case <-s.Ready():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s not ready", id)
	}
	return gate
}

// poll runs the command until its output matches every regular
// expression of want, or fails the test after 10 s.
func poll(t *testing.T, addr string, want []string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, out := cmd(t, addr, args...)
		missing := ""
		for _, w := range want {
			if !regexp.MustCompile(w).MatchString(out) {
				missing = w
				break
			}
		}
		if missing == "" {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("blastradius %s: no %q after 10s:\n%s", strings.Join(args, " "), missing, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A fleet of two under one fleet guard, whose new arm fails: the guard
// kills the gate; fleet shows the guards and the verdict, history the
// instances' creation, the verdict with its numbers, the kill and each
// instance applying it, exposure the live and killed windows with the new
// arm's failures and failed keys, and was-enabled answers by the history.
func TestHistoryExposureGuardsAndWasEnabled(t *testing.T) {
	srv := redistest.StartT(t)
	gates := []*rollout.Gate{guardedInstance(t, srv.Addr, "api-1"), guardedInstance(t, srv.Addr, "api-2")}
	live := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for !gates[0].Status().Killed || !gates[1].Status().Killed {
		if time.Now().After(deadline) {
			t.Fatal("the fleet guard did not kill the gate within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	killed := time.Now()

	poll(t, srv.Addr, []string{`GUARD +INSTANCE +MODE +HOLDER +LOOKS +LAST LOOK +VERDICT`, `checkout-v2 +api-\d +fleet +yes +[1-9]\d* +z=\d+\.\d+ \(limit \d\.\d+\) +TRIPPED: new `,
		`checkout-v2 +api-\d +fleet +no `}, "fleet")
	// Each instance's Guard reports the moment it applied the kill.
	out := poll(t, srv.Addr, []string{`instance api-1 +50% killed`, `instance api-2 +50% killed`}, "history", "checkout-v2")
	for _, want := range []string{"history of checkout-v2 (salt \"checkout-v2\")", "created", "verdict", "fleet-guard@api-", "[new ", "(version 1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %q:\n%s", want, out)
		}
	}
	code, out := cmd(t, srv.Addr, "history", "checkout-v2", "-json")
	var h fleet.History
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &h); code != 0 || err != nil || len(h.Entries) < 6 {
		t.Errorf("history -json: %d, %v, %d entries", code, err, len(h.Entries))
	}

	out = poll(t, srv.Addr, []string{`killed`, `50% live +[1-9]\d* +[1-9]\d* +0 +0 +0 +0 +created on api-`, `in the range +2 instances`}, "exposure", "checkout-v2", "-from", "1m")
	if !strings.Contains(out, "failed calls of the new arm sampled in the range") || !regexp.MustCompile(`api-\d +error +k-api-`).MatchString(out) {
		t.Errorf("exposure lacks the failed keys:\n%s", out)
	}
	if code, out := cmd(t, srv.Addr, "exposure", "checkout-v2", "-from", stampOf(killed.Add(time.Minute)), "-to", "0s"); code != 2 {
		t.Errorf("exposure with -to before -from: %d %q", code, out)
	}

	on, off := keysAt(50)
	at := stampOf(live)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{on, at}, 0, "yes: some instance routed"},
		{[]string{on, at, "-instance", "api-2"}, 0, "yes: instance api-2 routed"},
		{[]string{off, at}, 1, "no: some instance did not route"},
		{[]string{on, stampOf(killed.Add(time.Second))}, 1, "no: "},
		{[]string{on, "-instance", "api-9", at}, 1, "no: instance api-9"},
		{[]string{on, "-instance", "api-9", at}, 1, "instance api-9 reported no change of checkout-v2: answered by the fleet's publishes alone"},
	} {
		code, out := cmd(t, srv.Addr, append([]string{"was-enabled", "checkout-v2"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("was-enabled %q: %d %q, want %d %q", tc.args, code, out, tc.code, tc.want)
		}
	}
}

// keysAt returns a key below percent's buckets of checkout-v2 and one above.
func keysAt(percent float64) (on, off string) {
	for i := 0; on == "" || off == ""; i++ {
		k := fmt.Sprintf("user-%d", i)
		if rollout.Bucket("checkout-v2", k) < uint32(percent*rollout.Buckets/100) {
			on = cmp.Or(on, k)
		} else {
			off = cmp.Or(off, k)
		}
	}
	return on, off
}

func stampOf(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// While Redis is down or hung, every command fails within -wait, exit 1,
// and says why.
func TestRedisDownOrHung(t *testing.T) {
	hung := redistest.StartT(t)
	if err := hung.Pause(); err != nil {
		t.Fatal(err)
	}
	down := redistest.StartT(t)
	down.Stop()
	for name, addr := range map[string]string{"hung": hung.Addr, "down": down.Addr} {
		for _, args := range [][]string{
			{"kill", "checkout-v2", "-reason", "INC-1"}, {"fleet"}, {"history", "checkout-v2"},
			{"exposure", "checkout-v2"}, {"was-enabled", "checkout-v2", "user-1", "1h"},
		} {
			var out, errw bytes.Buffer
			start := time.Now()
			code := run(t.Context(), append([]string{"-redis", addr, "-wait", "300ms"}, args...), strings.NewReader(""), &out, &errw)
			took := time.Since(start)
			want := 1
			if args[0] == "was-enabled" {
				want = 2 // its 1 means "no"
			}
			if code != want || !strings.HasPrefix(errw.String(), "blastradius: ") || took > 2*time.Second {
				t.Errorf("%s Redis, %s: exit %d after %v, stdout %q, stderr %q; want %d within 2s", name, args[0], code, took, out.String(), errw.String(), want)
			}
		}
	}
}

// A change that is published but whose fleet history entry cannot be
// written (here an ACL denies the append) is live: the command says so,
// waits for the fleet and reports who applied it, as for any change.
func TestPublishedWithoutHistory(t *testing.T) {
	srv := redistest.StartT(t)
	regs := []*rollout.Registry{instance(t, srv.Addr, "api-1", "checkout-v2")}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.Do(t.Context(), "ACL", "SETUSER", "op", "on", ">pw", "~*", "&*", "+@all", "-rpush").Err(); err != nil {
		t.Fatal(err)
	}
	code, out := cmd(t, "redis://op:pw@"+srv.Addr, "kill", "checkout-v2", "-reason", "INC-8")
	if code != 0 || !strings.Contains(out, "applied on 1/1 instances") || !strings.Contains(out, "published, but its fleet history entry is not") {
		t.Errorf("kill without history: %d %q", code, out)
	}
	if g, _ := regs[0].Gate("checkout-v2"); !g.Status().Killed {
		t.Error("gate not killed")
	}
}

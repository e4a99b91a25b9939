package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func tour(t *testing.T, args ...string) (code int, out string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code = run(context.Background(), args, &stdout, &stderr)
	if stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	return code, stdout.String()
}

// TestEachIncident runs every incident alone and checks that its table has
// its rows and that every "with" figure met its target.
func TestEachIncident(t *testing.T) {
	for _, in := range incidents {
		t.Run(in.id, func(t *testing.T) {
			code, out := tour(t, "-only", in.id)
			if code != 0 {
				t.Fatalf("exit %d, output:\n%s", code, out)
			}
			if !strings.Contains(out, in.id+" ") || !strings.Contains(out, "every \"with\" figure met its target") {
				t.Fatalf("output lacks the incident row or the verdict:\n%s", out)
			}
			if strings.Contains(out, " NO\n") {
				t.Fatalf("a figure missed its target:\n%s", out)
			}
		})
	}
}

// TestSabotageFails breaks each incident's "with" arm on purpose and checks
// that the tour notices: a failed figure and a non-zero exit code.
func TestSabotageFails(t *testing.T) {
	for _, in := range incidents {
		t.Run(in.id, func(t *testing.T) {
			code, out := tour(t, "-only", in.id, "-sabotage", in.id)
			if code == 0 {
				t.Fatalf("sabotaged %s still exited 0:\n%s", in.id, out)
			}
			if !strings.Contains(out, "FAIL") || !strings.Contains(out, " NO\n") {
				t.Fatalf("sabotaged %s: no failed figure reported:\n%s", in.id, out)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	code, out := tour(t, "-only", "I3", "-json")
	var doc struct {
		Figures []figure `json:"figures"`
		Pass    bool     `json:"pass"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	if code != 0 || !doc.Pass || len(doc.Figures) == 0 || doc.Figures[0].Incident != "I3" {
		t.Fatalf("exit %d, doc %+v", code, doc)
	}
}

func TestUnknownIncident(t *testing.T) {
	if code, _ := tour(t, "-only", "I9"); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}

// figures runs incident id with args and returns its figures by name.
func figures(t *testing.T, id string, args ...string) map[string]figure {
	t.Helper()
	code, out := tour(t, append([]string{"-only", id, "-json"}, args...)...)
	var doc struct {
		Figures []figure `json:"figures"`
		Pass    bool     `json:"pass"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	if code != 0 || !doc.Pass {
		t.Fatalf("exit %d, pass %v:\n%s", code, doc.Pass, out)
	}
	figs := map[string]figure{}
	for _, f := range doc.Figures {
		figs[f.Name] = f
	}
	return figs
}

// checkI5 checks the fleet figures of I5: one kill stopped all 8
// instances, and the fleet view flagged exactly one, the stale instance.
func checkI5(t *testing.T, figs map[string]figure) {
	t.Helper()
	for name, want := range map[string]float64{
		"instances stopped by one kill":            i5Instances,
		"stale instance flagged by the fleet view": 1,
		"orders run through dead code":             0,
	} {
		if f, ok := figs[name]; !ok || f.With != want || !f.Pass {
			t.Errorf("%q = %+v, want with %v", name, f, want)
		}
	}
	if f := figs["time for one kill to reach all 8 (without: 45 min, no kill switch)"]; !f.Pass || f.With <= 0 || f.With > i5Bound.Seconds() {
		t.Errorf("kill reach = %+v, want in (0, %v] s", f, i5Bound.Seconds())
	}
}

// checkI5Notes checks that the table names the stale instance, why the
// fleet view flags it, and the store the fleet ran on.
func checkI5Notes(t *testing.T, out, store string) {
	t.Helper()
	for _, want := range []string{
		"I5: the fleet view flags i7 (build 2012-07-31, config 2012-07-31): ",
		"refuses config version 1: ",
		"unknown gate",
		"I5: one kill of smars through " + store,
		"applied by 8 of 8 instances",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestI5Fleet runs I5 on the in-memory store.
func TestI5Fleet(t *testing.T) {
	checkI5(t, figures(t, "I5"))
	if code, out := tour(t, "-only", "I5"); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	} else {
		checkI5Notes(t, out, "the in-memory store")
	}
}

// TestI5Redis runs I5 on a real redis-server and checks that the run
// deleted its keys.
func TestI5Redis(t *testing.T) {
	addr := startRedis(t)
	checkI5(t, figures(t, "I5", "-redis", addr))
	code, out := tour(t, "-only", "I5", "-redis", addr)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	checkI5Notes(t, out, "Redis "+addr)
	noKeysLeft(t, addr)
}

// checkI2Fleet checks the fleet figures of I2: the fleet guard's kill
// stopped all 8 instances within the bound, after about as many calls as
// one instance's guard needs on all the traffic.
func checkI2Fleet(t *testing.T, figs map[string]figure) {
	t.Helper()
	if f := figs["instances stopped by the fleet guard"]; f.With != i2Instances || !f.Pass {
		t.Errorf("instances stopped = %+v, want with %d", f, i2Instances)
	}
	if f := figs[i2ReachFigure]; !f.Pass || f.With <= 0 || f.With > i2Bound.Seconds() {
		t.Errorf("kill reach = %+v, want in (0, %v] s", f, i2Bound.Seconds())
	}
	one, err := i2OneInstanceCalls(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if f := figs["calls to the kill (fleet of 8)"]; !f.Pass || f.With < 0.8*float64(one) || f.With > 1.5*float64(one) {
		t.Errorf("calls to the kill = %+v, want within -20%%..+50%% of one instance's %d", f, one)
	}
	if f := figs["users who got a nil account (fleet of 8)"]; !f.Pass || f.With == 0 || f.With >= f.Without {
		t.Errorf("nil accounts = %+v, want some, fewer than without", f)
	}
	if f := figs["affected orders named from the fleet history"]; !f.Pass || f.With == 0 || f.Target != fmt.Sprintf("%v of %v, 0 wrong", f.With, f.With) {
		t.Errorf("affected orders named = %+v, want all of them, none wrong", f)
	}
}

// checkI2Notes checks that the table gives the fleet guard's reason and
// the store the fleet ran on.
func checkI2Notes(t *testing.T, out, store string) {
	t.Helper()
	for _, want := range []string{
		"I2: fleet of 8 on " + store,
		"the fleet guard's kill reason: fleet guard: new ",
		"pooled from 8 instances",
		"I2: affected orders named: ",
		" wrong (of ",
		"by WasEnabled on the fleet history in " + store,
		"rightly not named); the first: order-",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The list has orders of enabled users that the old lookup served
	// after the kill: the naming must leave them out.
	m := regexp.MustCompile(`; (\d+) orders of enabled users served by the old lookup after the kill, rightly not named`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Errorf("no order of an enabled user served after the kill:\n%s", out)
	}
}

// TestI2Fleet runs I2's fleet on the in-memory store.
func TestI2Fleet(t *testing.T) {
	checkI2Fleet(t, figures(t, "I2"))
	if code, out := tour(t, "-only", "I2"); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	} else {
		checkI2Notes(t, out, "the in-memory store")
	}
}

// TestI2Redis runs I2's fleet on a real redis-server and checks that the
// run deleted its keys.
func TestI2Redis(t *testing.T) {
	addr := startRedis(t)
	checkI2Fleet(t, figures(t, "I2", "-redis", addr))
	code, out := tour(t, "-only", "I2", "-redis", addr)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	checkI2Notes(t, out, "Redis "+addr)
	noKeysLeft(t, addr)
}

// noKeysLeft checks that the run deleted every key it made in the Redis at
// addr.
func noKeysLeft(t *testing.T, addr string) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	if n, err := client.DBSize(t.Context()).Result(); err != nil || n != 0 {
		t.Errorf("%d keys left in Redis (err %v), want none", n, err)
	}
}

// TestI5RedisUnreachable checks that an unreachable Redis is an error of
// I5, not a hang.
func TestI5RedisUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-only", "I5", "-redis", addr}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if want := "tour: I5: redis " + addr; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
}

// startRedis starts a redis-server on a free loopback port, without
// persistence, and stops it by its PID in Cleanup. Without redis-server
// the test is skipped, or fails under CI=true.
func startRedis(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not found; install it with apt-get install redis-server"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for range 3 { // another process may take the free port first
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "notice")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The server logs "Ready to accept connections" once it listens;
		// the log is read to its end, so the pipe never fills.
		ready := make(chan bool, 1)
		drained := make(chan struct{})
		var log strings.Builder
		go func() {
			defer close(drained)
			sc := bufio.NewScanner(stdout)
			up := false
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
				if !up && strings.Contains(sc.Text(), "Ready to accept connections") {
					up = true
					ready <- true
				}
			}
			if !up {
				ready <- false
			}
		}()
		stop := func() {
			_ = cmd.Process.Kill()
			<-drained
			_ = cmd.Wait()
		}
		select {
		case up := <-ready:
			if up {
				t.Cleanup(stop)
				return net.JoinHostPort("127.0.0.1", port)
			}
			stop()
			t.Logf("redis-server on port %s exited:\n%s", port, log.String())
		case <-time.After(10 * time.Second):
			stop()
			t.Fatalf("redis-server on port %s not ready after 10s:\n%s", port, log.String())
		}
	}
	t.Fatal("redis-server did not start on a free port in 3 attempts")
	return ""
}

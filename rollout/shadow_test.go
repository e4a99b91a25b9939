package rollout_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/blastradius/blastradius/rollout"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// syncBuffer is a bytes.Buffer safe for a logger shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestShadowServesOldAndCompares(t *testing.T) {
	cases := []struct {
		name        string
		percent     float64
		newArm      func(context.Context) (*account, error)
		opts        []rollout.CallOption
		want        map[string]int64
		wantLog     []string
		wantNoInLog []string
	}{
		{"not gated: new is not called", 0, armBehaviours["panic"], nil,
			map[string]int64{"calls old ok": 1}, nil, nil},
		{"equal", 100, okArm("a-1"), nil,
			map[string]int64{"calls old ok": 1, "calls new ok": 1}, nil, nil},
		{"mismatch", 100, armBehaviours["nil"], nil,
			map[string]int64{"calls old ok": 1, "calls new ok": 1, "mismatches": 1},
			[]string{"rollout: shadow mismatch", "key=user-1", "old=&{ID:a-1}", "new=<nil>"}, nil},
		{"mismatch redacted", 100, okArm("a-2"), []rollout.CallOption{rollout.WithRedact(func(a *account) any { return "id:" + a.ID[:1] + "…" })},
			map[string]int64{"calls old ok": 1, "calls new ok": 1, "mismatches": 1},
			[]string{"old=id:a…", "new=id:a…"}, []string{"a-1", "a-2"}},
		{"custom equal", 100, okArm("A-1"), []rollout.CallOption{rollout.WithEqual(func(a, b *account) bool { return strings.EqualFold(a.ID, b.ID) })},
			map[string]int64{"calls old ok": 1, "calls new ok": 1}, nil, nil},
		{"new fails: counted, not compared", 100, armBehaviours["error"], nil,
			map[string]int64{"calls old ok": 1, "calls new error": 1}, nil, nil},
		{"new invalid", 100, armBehaviours["nil"], []rollout.CallOption{rollout.WithValidate(validAccount)},
			map[string]int64{"calls old ok": 1, "calls new invalid": 1}, nil, nil},
		{"new panics: isolated", 100, armBehaviours["panic"], nil,
			map[string]int64{"calls old ok": 1, "calls new panic": 1}, []string{"rollout: arm panicked", "panic=boom"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mp, read := meter(t)
			var logs syncBuffer
			g, _ := rollout.New("lookup-v2", rollout.WithPercent(c.percent), mp,
				rollout.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			v, err := rollout.Shadow(context.Background(), g, "user-1", okArm("a-1"), c.newArm, c.opts...)
			if err != nil || idOf(v) != "a-1" {
				t.Fatalf("Shadow = %v, %v; want the old arm's account", v, err)
			}
			if got := read(); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("counters = %v, want %v", got, c.want)
			}
			for _, s := range c.wantLog {
				if !strings.Contains(logs.String(), s) {
					t.Errorf("log lacks %q:\n%s", s, logs.String())
				}
			}
			for _, s := range c.wantNoInLog {
				if strings.Contains(logs.String(), s) {
					t.Errorf("log holds %q:\n%s", s, logs.String())
				}
			}
		})
	}
}

// The old arm's failures are returned as they are; its panic is isolated.
func TestShadowOldFailure(t *testing.T) {
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(100))
	if _, err := rollout.Shadow(context.Background(), g, "u", armBehaviours["error"], okArm("n")); err != errLookup {
		t.Errorf("err = %v, want errLookup", err)
	}
	if _, err := rollout.Shadow(context.Background(), g, "u", armBehaviours["panic"], okArm("n")); err == nil || !strings.Contains(err.Error(), "panic in old arm") {
		t.Errorf("err = %v, want a panic of the old arm", err)
	}
}

// WithValidate in Shadow counts an invalid old result but serves it as it is.
func TestShadowValidateDoesNotChangeTheAnswer(t *testing.T) {
	mp, read := meter(t)
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), mp)
	v, err := rollout.Shadow(context.Background(), g, "u", armBehaviours["nil"], okArm("n"), rollout.WithValidate(validAccount))
	if v != nil || err != nil {
		t.Errorf("Shadow = %v, %v; want the old arm's nil, nil", v, err)
	}
	want := map[string]int64{"calls old invalid": 1, "calls new ok": 1}
	if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
}

// A mismatch log goes through the log budget: 10 lines a minute per gate.
func TestShadowMismatchLogBudget(t *testing.T) {
	var logs syncBuffer
	clock := newClock()
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), rollout.WithClock(clock.Now),
		rollout.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	for range 1000 {
		_, _ = rollout.Shadow(context.Background(), g, "u", okArm("a"), okArm("b"))
	}
	if n := strings.Count(logs.String(), "shadow mismatch"); n != 10 {
		t.Errorf("%d mismatch lines for 1000 mismatches, want 10", n)
	}
}

func TestShadowTimeout(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mp, read := meter(t)
				g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), mp)
				opts := []rollout.CallOption{rollout.WithTimeout(200 * time.Millisecond)}
				if async {
					opts = append(opts, rollout.WithAsync())
				}
				// The caller's context ends at once; the shadow keeps its own
				// timeout.
				ctx, cancel := context.WithCancel(context.Background())
				start := time.Now()
				v, err := rollout.Shadow(ctx, g, "u", okArm("a"), armBehaviours["slow"], opts...)
				cancel()
				took := time.Since(start)
				if err != nil || idOf(v) != "a" {
					t.Fatalf("Shadow = %v, %v", v, err)
				}
				if want := map[bool]time.Duration{false: 200 * time.Millisecond, true: 0}[async]; took != want {
					t.Errorf("Shadow returned after %v, want %v", took, want)
				}
				synctest.Wait() // the async shadow is blocked on its timeout
				time.Sleep(200 * time.Millisecond)
				synctest.Wait() // ... and has ended at it: no goroutine outlives its timeout
				want := map[string]int64{"calls old ok": 1, "calls new timeout": 1}
				if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("counters = %v, want %v", got, want)
				}
			})
		})
	}
}

func TestShadowConcurrencyCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mp, read := meter(t)
		g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), mp)
		opts := []rollout.CallOption{rollout.WithAsync(), rollout.WithMaxConcurrent(2), rollout.WithTimeout(time.Second)}
		for range 5 {
			_, _ = rollout.Shadow(context.Background(), g, "u", okArm("a"), armBehaviours["slow"], opts...)
		}
		synctest.Wait()
		want := map[string]int64{"calls old ok": 5, "shadow.skipped": 3}
		if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("while 2 shadows are in flight: counters = %v, want %v", got, want)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		// The slots are free again.
		_, _ = rollout.Shadow(context.Background(), g, "u", okArm("a"), okArm("a"), opts...)
		synctest.Wait()
		want = map[string]int64{"calls old ok": 6, "calls new ok": 1, "calls new timeout": 2, "shadow.skipped": 3}
		if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after the timeout: counters = %v, want %v", got, want)
		}
	})
}

// TestShadowNoGoroutineLeak runs async shadows in real time whose new arm
// waits for its context; once their timeout has passed, goleak finds no
// goroutine of theirs.
func TestShadowNoGoroutineLeak(t *testing.T) {
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(100))
	opts := []rollout.CallOption{rollout.WithAsync(), rollout.WithTimeout(20 * time.Millisecond)}
	for range 20 {
		_, _ = rollout.Shadow(context.Background(), g, "u", okArm("a"), armBehaviours["slow"], opts...)
	}
	// VerifyNone retries until the goroutines are gone (or fails after
	// its own deadline): a bounded wait on the condition, not a sleep.
	goleak.VerifyNone(t)
	if st, _ := g.Status(), 0; st.Killed {
		t.Error("gate killed")
	}
}

// A panic of the new arm on its own goroutine is isolated too.
func TestShadowAsyncPanicIsolation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mp, read := meter(t)
		g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), mp, rollout.WithGuard())
		v, err := rollout.Shadow(context.Background(), g, "u", okArm("a"), armBehaviours["panic"], rollout.WithAsync())
		if err != nil || idOf(v) != "a" {
			t.Fatalf("Shadow = %v, %v", v, err)
		}
		synctest.Wait()
		want := map[string]int64{"calls old ok": 1, "calls new panic": 1, "kills guard": 1}
		if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("counters = %v, want %v", got, want)
		}
		if st := g.Status(); !st.Killed || st.Reason != "new arm panics: 1 in 1 calls (limit 1)" {
			t.Errorf("status: killed %v, reason %q", st.Killed, st.Reason)
		}
	})
}

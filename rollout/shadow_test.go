package rollout_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/rollout"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestShadowServesOldAndCompares(t *testing.T) {
	cases := []struct {
		name        string
		percent     float64
		arms        rollout.Arms[string, *account] // Old is okArm("a-1")
		want        map[string]int64
		wantLog     []string
		wantNoInLog []string
	}{
		{"not gated: new is not called", 0, rollout.Arms[string, *account]{New: armBehaviours["panic"]},
			map[string]int64{"calls old ok": 1}, nil, nil},
		{"equal", 100, rollout.Arms[string, *account]{New: okArm("a-1")},
			map[string]int64{"calls old ok": 1, "calls new ok": 1}, nil, nil},
		{"mismatch", 100, rollout.Arms[string, *account]{New: armBehaviours["nil"]},
			map[string]int64{"calls old ok": 1, "calls new ok": 1, "mismatches": 1},
			[]string{"rollout: shadow mismatch", "key=user-1", "old=&{ID:a-1}", "new=<nil>"}, nil},
		{"mismatch redacted", 100, rollout.Arms[string, *account]{New: okArm("a-2"), Redact: func(a *account) any { return "id:" + a.ID[:1] + "…" }},
			map[string]int64{"calls old ok": 1, "calls new ok": 1, "mismatches": 1},
			[]string{"old=id:a…", "new=id:a…"}, []string{"a-1", "a-2"}},
		{"custom equal", 100, rollout.Arms[string, *account]{New: okArm("A-1"), Equal: func(a, b *account) bool { return strings.EqualFold(a.ID, b.ID) }},
			map[string]int64{"calls old ok": 1, "calls new ok": 1}, nil, nil},
		{"new fails: counted, not compared", 100, rollout.Arms[string, *account]{New: armBehaviours["error"]},
			map[string]int64{"calls old ok": 1, "calls new error": 1}, nil, nil},
		{"new invalid", 100, rollout.Arms[string, *account]{New: armBehaviours["nil"], Validate: validAccount},
			map[string]int64{"calls old ok": 1, "calls new invalid": 1}, nil, nil},
		{"new panics: isolated", 100, rollout.Arms[string, *account]{New: armBehaviours["panic"]},
			map[string]int64{"calls old ok": 1, "calls new panic": 1}, []string{"rollout: arm panicked", "panic=boom"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mp, read := meter(t)
			var logs logtest.Buffer
			g, _ := rollout.New("lookup-v2", rollout.WithPercent(c.percent), mp,
				rollout.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			c.arms.Old = okArm("a-1")
			v, err := path(t, g, c.arms).Shadow(context.Background(), "user-1", "user-1")
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
	if _, err := path(t, g, rollout.Arms[string, *account]{Old: armBehaviours["error"], New: okArm("n")}).Shadow(context.Background(), "u", "u"); err != errLookup {
		t.Errorf("err = %v, want errLookup", err)
	}
	if _, err := path(t, g, rollout.Arms[string, *account]{Old: armBehaviours["panic"], New: okArm("n")}).Shadow(context.Background(), "u", "u"); err == nil || !strings.Contains(err.Error(), "panic in old arm") {
		t.Errorf("err = %v, want a panic of the old arm", err)
	}
}

// Validate in Shadow counts an invalid old result but serves it as it is.
func TestShadowValidateDoesNotChangeTheAnswer(t *testing.T) {
	mp, read := meter(t)
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), mp)
	v, err := path(t, g, rollout.Arms[string, *account]{Old: armBehaviours["nil"], New: okArm("n"), Validate: validAccount}).Shadow(context.Background(), "u", "u")
	if v != nil || err != nil {
		t.Errorf("Shadow = %v, %v; want the old arm's nil, nil", v, err)
	}
	want := map[string]int64{"calls old invalid": 1, "calls new ok": 1}
	if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
}

func TestShadowTimeout(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mp, read := meter(t)
				g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), mp)
				p := path(t, g, rollout.Arms[string, *account]{Old: okArm("a"), New: armBehaviours["slow"],
					Timeout: 200 * time.Millisecond, Async: async})
				// The caller's context ends at once; the shadow keeps its own
				// timeout.
				ctx, cancel := context.WithCancel(context.Background())
				start := time.Now()
				v, err := p.Shadow(ctx, "u", "u")
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
		// Old answers "a"; New waits for its timeout until fast is set.
		var fast atomic.Bool
		newArm := func(ctx context.Context, user string) (*account, error) {
			if fast.Load() {
				return okArm("a")(ctx, user)
			}
			return armBehaviours["slow"](ctx, user)
		}
		p := path(t, g, rollout.Arms[string, *account]{Old: okArm("a"), New: newArm, Async: true, MaxConcurrent: 2, Timeout: time.Second})
		for range 5 {
			_, _ = p.Shadow(context.Background(), "u", "u")
		}
		synctest.Wait()
		want := map[string]int64{"calls old ok": 5, "shadow.skipped": 3}
		if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("while 2 shadows are in flight: counters = %v, want %v", got, want)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		// The slots are free again.
		fast.Store(true)
		_, _ = p.Shadow(context.Background(), "u", "u")
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
	p := path(t, g, rollout.Arms[string, *account]{Old: okArm("a"), New: armBehaviours["slow"], Async: true, Timeout: 20 * time.Millisecond})
	for range 20 {
		_, _ = p.Shadow(context.Background(), "u", "u")
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
		v, err := path(t, g, rollout.Arms[string, *account]{Old: okArm("a"), New: armBehaviours["panic"], Async: true}).Shadow(context.Background(), "u", "u")
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

package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/rollout"
)

// meter returns a meter provider option and a function that reads the
// rollout counters as "instrument variant outcome reason" → value.
func meter(t *testing.T) (rollout.SharedOption, func() map[string]int64) {
	t.Helper()
	r := metrictest.New(t)
	return rollout.WithMeterProvider(r), func() map[string]int64 {
		out := map[string]int64{}
		for _, name := range []string{"calls", "mismatches", "shadow.skipped", "kills"} {
			for set, v := range r.Sums("blastradius.rollout." + name) {
				k := name
				for _, a := range []attribute.Key{"feature_flag.result.variant", "outcome", "reason"} {
					if v, ok := set.Value(a); ok {
						k += " " + v.AsString()
					}
				}
				out[k] += v
			}
		}
		return out
	}
}

type account struct{ ID string }

var (
	errLookup  = errors.New("lookup failed")
	errNoMatch = errors.New("no account")
)

func okArm(id string) func(context.Context, string) (*account, error) {
	return func(context.Context, string) (*account, error) { return &account{ID: id}, nil }
}

func validAccount(a *account) error {
	if a == nil {
		return errNoMatch
	}
	return nil
}

// arms for the outcome table.
var armBehaviours = map[string]func(context.Context, string) (*account, error){
	"ok":    okArm("new"),
	"error": func(context.Context, string) (*account, error) { return nil, errLookup },
	"panic": func(context.Context, string) (*account, error) { panic("boom") },
	"nil":   func(context.Context, string) (*account, error) { return nil, nil },
	"slow": func(ctx context.Context, _ string) (*account, error) {
		<-ctx.Done()
		return nil, fmt.Errorf("lookup: %w", ctx.Err())
	},
}

// path builds the Path of arms behind g, failing the test on an error.
func path[In, Out any](t testing.TB, g *rollout.Gate, arms rollout.Arms[In, Out]) *rollout.Path[In, Out] {
	t.Helper()
	p, err := rollout.NewPath(g, arms)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunOutcomes(t *testing.T) {
	cases := []struct {
		name     string
		percent  float64
		arm      string // behaviour of the routed arm
		validate bool
		timeout  time.Duration
		wantID   string
		wantErr  error
		wantKind string // counter key
	}{
		{"old ok", 0, "ok", false, 0, "new", nil, "calls old ok"},
		{"new ok", 100, "ok", false, 0, "new", nil, "calls new ok"},
		{"new error", 100, "error", false, 0, "", errLookup, "calls new error"},
		{"old error", 0, "error", false, 0, "", errLookup, "calls old error"},
		{"new panic", 100, "panic", false, 0, "", rollout.ErrPanic, "calls new panic"},
		{"old panic", 0, "panic", false, 0, "", rollout.ErrPanic, "calls old panic"},
		{"new invalid", 100, "nil", true, 0, "", rollout.ErrInvalidResult, "calls new invalid"},
		{"nil without validate is ok", 100, "nil", false, 0, "", nil, "calls new ok"},
		{"new timeout", 100, "slow", false, 50 * time.Millisecond, "", context.DeadlineExceeded, "calls new timeout"},
		{"old timeout", 0, "slow", false, 50 * time.Millisecond, "", context.DeadlineExceeded, "calls old timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mp, read := meter(t)
				g, err := rollout.New("lookup-v2", rollout.WithPercent(c.percent), mp)
				if err != nil {
					t.Fatal(err)
				}
				f := armBehaviours[c.arm]
				arms := rollout.Arms[string, *account]{Old: f, New: f, Timeout: c.timeout}
				if c.validate {
					arms.Validate = validAccount
				}
				start := time.Now()
				v, err := path(t, g, arms).Run(context.Background(), "user-1", "user-1")
				if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				if id := idOf(v); id != c.wantID {
					t.Errorf("result %q, want %q", id, c.wantID)
				}
				if c.arm == "slow" {
					if d := time.Since(start); d != 50*time.Millisecond {
						t.Errorf("timed out after %v, want 50ms", d)
					}
				}
				want := map[string]int64{c.wantKind: 1}
				if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("counters = %v, want %v", got, want)
				}
			})
		})
	}
}

func idOf(a *account) string {
	if a == nil {
		return ""
	}
	return a.ID
}

// The caller's own deadline is not the arm's timeout: the outcome is error.
func TestRunCallerDeadlineIsError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mp, read := meter(t)
		g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), mp)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		slow := armBehaviours["slow"]
		_, err := path(t, g, rollout.Arms[string, *account]{Old: slow, New: slow, Timeout: time.Second}).Run(ctx, "user-1", "user-1")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if got := read()["calls new error"]; got != 1 {
			t.Errorf("calls new error = %d, want 1 (%v)", got, read())
		}
	})
}

func TestRunFallback(t *testing.T) {
	for _, arm := range []string{"error", "panic", "nil", "slow"} {
		t.Run(arm, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mp, read := meter(t)
				g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), mp)
				arms := rollout.Arms[string, *account]{Old: okArm("old"), New: armBehaviours[arm],
					Fallback: true, Validate: validAccount, Timeout: time.Second}
				v, err := path(t, g, arms).Run(context.Background(), "user-1", "user-1")
				if err != nil || idOf(v) != "old" {
					t.Fatalf("Run = %v, %v; want the old arm's account", v, err)
				}
				outcome := map[string]string{"error": "error", "panic": "panic", "nil": "invalid", "slow": "timeout"}[arm]
				want := map[string]int64{"calls new " + outcome: 1, "calls old ok": 1}
				if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("counters = %v, want %v", got, want)
				}

				// Without Fallback the failure reaches the caller.
				arms.Fallback = false
				if _, err := path(t, g, arms).Run(context.Background(), "user-1", "user-1"); err == nil {
					t.Error("no error without fallback")
				}
			})
		})
	}
	// A successful new arm is not followed by old.
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(100))
	calledOld := false
	old := func(context.Context, string) (*account, error) { calledOld = true; return nil, nil }
	p := path(t, g, rollout.Arms[string, *account]{Old: old, New: okArm("new"), Fallback: true})
	if v, _ := p.Run(context.Background(), "u", "u"); idOf(v) != "new" || calledOld {
		t.Errorf("got %v, old called %v", v, calledOld)
	}
}

func TestRunPanicIsolation(t *testing.T) {
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), rollout.WithLogger(discardLogger()))
	cause := io.ErrUnexpectedEOF
	p := path(t, g, rollout.Arms[string, *account]{Old: okArm("old"), New: func(context.Context, string) (*account, error) {
		panic(cause)
	}})
	_, err := p.Run(context.Background(), "user-1", "user-1")
	var pe *rollout.PanicError
	if !errors.As(err, &pe) || !errors.Is(err, rollout.ErrPanic) {
		t.Fatalf("err = %v, want a *PanicError", err)
	}
	if pe.Variant != "new" || pe.Value != cause || !errors.Is(err, io.ErrUnexpectedEOF) || len(pe.Stack) == 0 {
		t.Errorf("PanicError = %+v", pe)
	}
	if want := "rollout: panic in new arm: unexpected EOF"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func intArm(context.Context, string) (int, error) { return 42, nil }

func intValid(int) error { return nil }

// TestRunDoesNotAllocate backs the zero-allocation claim of Run: on both
// arms, with and without a guard, with and without Validate and Fallback.
func TestRunDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	for _, pct := range []float64{0, 12.5, 100} {
		for _, guarded := range []bool{false, true} {
			opts := []rollout.Option{rollout.WithPercent(pct)}
			if guarded {
				opts = append(opts, rollout.WithGuard())
			}
			g, err := rollout.New("lookup-v2", opts...)
			if err != nil {
				t.Fatal(err)
			}
			plain := path(t, g, rollout.Arms[string, int]{Old: intArm, New: intArm})
			checked := path(t, g, rollout.Arms[string, int]{Old: intArm, New: intArm, Validate: intValid, Fallback: true})
			i := 0
			n := testing.AllocsPerRun(2000, func() {
				_, _ = plain.Run(ctx, benchKeys[i&1023], benchKeys[i&1023])
				_, _ = checked.Run(ctx, benchKeys[i&1023], benchKeys[i&1023])
				i++
			})
			if n != 0 {
				t.Errorf("percent %v, guard %v: %v allocs per run, want 0", pct, guarded, n)
			}
		}
	}
}

// Shadow for a key the gate does not enable costs the old arm and Enabled:
// no allocation.
func TestShadowNotGatedDoesNotAllocate(t *testing.T) {
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(0), rollout.WithGuard())
	p := path(t, g, rollout.Arms[string, int]{Old: intArm, New: intArm, Validate: intValid})
	ctx := context.Background()
	i := 0
	if n := testing.AllocsPerRun(2000, func() {
		_, _ = p.Shadow(ctx, benchKeys[i&1023], benchKeys[i&1023])
		i++
	}); n != 0 {
		t.Errorf("%v allocs per run, want 0", n)
	}
}

// Run reads no clock: a gate without a pending promotion, with a guard,
// through thousands of calls and several guard checkpoints.
func TestRunReadsNoClock(t *testing.T) {
	var reads atomic.Int64
	now := func() time.Time { reads.Add(1); return time.Unix(0, 0) }
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(50), rollout.WithClock(now), rollout.WithGuard())
	p := path(t, g, rollout.Arms[string, int]{Old: intArm, New: intArm})
	reads.Store(0) // New reads it once, for the gate's history
	for i := range 20_000 {
		_, _ = p.Run(context.Background(), benchKeys[i&1023], benchKeys[i&1023])
	}
	gs, _ := g.Guard()
	if n := reads.Load(); n != 0 || gs.Looks < 10 {
		t.Errorf("%d clock reads in 20,000 calls (%d guard looks), want 0 reads and at least 10 looks", n, gs.Looks)
	}
}

// The call counters carry exactly the attribute sets of the README table.
func TestRunMetricAttributes(t *testing.T) {
	r := metrictest.New(t)
	g, _ := rollout.New("lookup-v2", rollout.WithPercent(100), rollout.WithMeterProvider(r))
	_, _ = path(t, g, rollout.Arms[string, *account]{Old: okArm("a"), New: okArm("a")}).Run(context.Background(), "u", "u")
	_, _ = path(t, g, rollout.Arms[string, *account]{Old: okArm("a"), New: okArm("b")}).Shadow(context.Background(), "u", "u")
	key := []string{"feature_flag.key", "lookup-v2"}
	with := func(kv ...string) attribute.Set { return metrictest.Attrs(append(key, kv...)...) }
	want := map[string]map[attribute.Set]int64{
		"blastradius.rollout.calls": {
			with("feature_flag.result.variant", "new", "outcome", "ok"): 2,
			with("feature_flag.result.variant", "old", "outcome", "ok"): 1,
		},
		"blastradius.rollout.mismatches": {with(): 1},
	}
	for name, w := range want {
		if sum, ok := r.Metric(name).(metricdata.Sum[int64]); !ok || !sum.IsMonotonic {
			t.Fatalf("%s: %T, want a monotonic Sum[int64]", name, r.Metric(name))
		}
		if got := r.Sums(name); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
}

package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/goleak"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/internal/metrictest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

func fail(context.Context) error { return errBoom }
func ok(context.Context) error   { return nil }

func mustNew(t *testing.T, opts ...breaker.Option) *breaker.Breaker {
	t.Helper()
	b, err := breaker.New("test", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantState(t *testing.T, b *breaker.Breaker, want breaker.State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("state = %v, want %v", got, want)
	}
}

// TestStateMachineTiming walks the whole state machine inside a synctest
// bubble, where time is fake even inside gobreaker.
func TestStateMachineTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const open = 10 * time.Second
		b := mustNew(t, breaker.WithConsecutiveFailures(3), breaker.WithOpenDuration(open), breaker.WithHalfOpenProbes(2))
		ctx := context.Background()

		// Closed to open after exactly the threshold.
		for i := range 2 {
			if err := b.Do(ctx, fail); !errors.Is(err, errBoom) {
				t.Fatalf("call %d: err = %v", i, err)
			}
			wantState(t, b, breaker.Closed)
		}
		_ = b.Do(ctx, fail)
		wantState(t, b, breaker.Open)
		called := false
		if err := b.Do(ctx, func(context.Context) error { called = true; return nil }); !errors.Is(err, breaker.ErrOpen) || called {
			t.Fatalf("open breaker: err = %v, called = %v", err, called)
		}

		// Open to half-open: gobreaker is still open at exactly the open
		// duration (expiry.Before(now) is false) and half-open 1ns later.
		time.Sleep(open)
		wantState(t, b, breaker.Open)
		time.Sleep(time.Nanosecond)
		wantState(t, b, breaker.HalfOpen)

		// Half-open to closed after the probes succeed.
		for range 2 {
			if err := b.Do(ctx, ok); err != nil {
				t.Fatal(err)
			}
		}
		wantState(t, b, breaker.Closed)

		// Trip again, then half-open to open on a probe failure.
		for range 3 {
			_ = b.Do(ctx, fail)
		}
		wantState(t, b, breaker.Open)
		time.Sleep(open + time.Nanosecond)
		wantState(t, b, breaker.HalfOpen)
		_ = b.Do(ctx, fail)
		wantState(t, b, breaker.Open)
	})
}

// TestHalfOpenProbeLimit: while probes are in flight, further calls are
// rejected with ErrOpen.
func TestHalfOpenProbeLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenDuration(time.Second))
		ctx := context.Background()
		_ = b.Do(ctx, fail)
		time.Sleep(2 * time.Second)
		release := make(chan struct{})
		done := make(chan error)
		go func() {
			done <- b.Do(ctx, func(context.Context) error { <-release; return nil })
		}()
		synctest.Wait()
		if err := b.Do(ctx, ok); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("second probe: err = %v, want ErrOpen", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		wantState(t, b, breaker.Closed)
	})
}

func TestFailureRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithFailureRatio(0.5, 10, 10*time.Second, time.Second))
		ctx := context.Background()
		// 4 failures in 9 calls: below the minimum, and below the ratio.
		for i := range 9 {
			if i%2 == 0 {
				_ = b.Do(ctx, ok)
			} else {
				_ = b.Do(ctx, fail)
			}
		}
		wantState(t, b, breaker.Closed)
		// The 10th call is a failure: 5/10 = 0.5 trips.
		_ = b.Do(ctx, fail)
		wantState(t, b, breaker.Open)
	})
}

// TestFailureRatioRollingWindow: failures older than the window fall out.
func TestFailureRatioRollingWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithFailureRatio(0.5, 4, 4*time.Second, time.Second))
		ctx := context.Background()
		_ = b.Do(ctx, fail)
		_ = b.Do(ctx, fail)
		_ = b.Do(ctx, ok)
		time.Sleep(5 * time.Second) // the first three calls leave the window
		_ = b.Do(ctx, ok)
		_ = b.Do(ctx, ok)
		_ = b.Do(ctx, ok)
		_ = b.Do(ctx, fail) // 1/4 in window: closed
		wantState(t, b, breaker.Closed)
	})
}

func TestClassification(t *testing.T) {
	errSoft := errors.New("soft")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	custom := breaker.WithClassifier(func(ctx context.Context, err error) breaker.Outcome {
		if errors.Is(err, errSoft) {
			return breaker.Success
		}
		return breaker.DefaultClassifier(ctx, err)
	})
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		opts []breaker.Option
		want string // outcome attribute recorded
	}{
		{"nil is success", context.Background(), nil, nil, "success"},
		{"plain error is failure", context.Background(), errBoom, nil, "failure"},
		{"caller cancelled is excluded", cancelled, context.Canceled, nil, "excluded"},
		{"wrapped caller cancel is excluded", cancelled, fmt.Errorf("get: %w", context.Canceled), nil, "excluded"},
		{"caller deadline is failure", expired, context.DeadlineExceeded, nil, "failure"},
		{"dependency's own deadline is failure", context.Background(), context.DeadlineExceeded, nil, "failure"},
		{"canceled without caller cancel is failure", context.Background(), context.Canceled, nil, "failure"},
		{"custom success", context.Background(), errSoft, []breaker.Option{custom}, "success"},
		{"custom falls back to default", cancelled, context.Canceled, []breaker.Option{custom}, "excluded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader := metrictest.New(t)
			b := mustNew(t, append(tt.opts, breaker.WithMeterProvider(reader), breaker.WithConsecutiveFailures(1))...)
			err := b.Do(tt.ctx, func(context.Context) error { return tt.err })
			if err != tt.err {
				t.Fatalf("Do returned %v, want fn's error %v unchanged", err, tt.err)
			}
			if got := callCounts(reader)[tt.want]; got != 1 {
				t.Fatalf("outcome %q count = %d, want 1 (all: %v)", tt.want, got, callCounts(reader))
			}
			wantOpen := tt.want == "failure"
			if (b.State() == breaker.Open) != wantOpen {
				t.Fatalf("state = %v after one %s with threshold 1", b.State(), tt.want)
			}
		})
	}
}

func TestPanicCountsAsFailureAndRepanics(t *testing.T) {
	reader := metrictest.New(t)
	b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithMeterProvider(reader))
	func() {
		defer func() {
			if r := recover(); r != "kaboom" {
				t.Fatalf("recovered %v, want re-panic of kaboom", r)
			}
		}()
		_ = b.Do(context.Background(), func(context.Context) error { panic("kaboom") })
	}()
	wantState(t, b, breaker.Open)
	if got := callCounts(reader)["failure"]; got != 1 {
		t.Fatalf("failure count = %d, want 1", got)
	}
}

func TestCall(t *testing.T) {
	b := mustNew(t, breaker.WithConsecutiveFailures(1))
	v, err := breaker.Call(context.Background(), b, func(context.Context) (int, error) { return 42, nil })
	if v != 42 || err != nil {
		t.Fatalf("Call = %d, %v", v, err)
	}
	_, _ = breaker.Call(context.Background(), b, func(context.Context) (int, error) { return 0, errBoom })
	v, err = breaker.Call(context.Background(), b, func(context.Context) (int, error) { return 7, nil })
	if v != 0 || !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("Call on open breaker = %d, %v; want 0, ErrOpen", v, err)
	}
}

// TestNilFn: a nil fn is a programming error: Do and Call panic, and the
// breaker counts nothing.
func TestNilFn(t *testing.T) {
	reader := metrictest.New(t)
	b := mustNew(t, breaker.WithMeterProvider(reader))
	for name, call := range map[string]func(){
		"Do":   func() { _ = b.Do(context.Background(), nil) },
		"Call": func() { _, _ = breaker.Call[int](context.Background(), b, nil) },
	} {
		func() {
			defer func() {
				if r := recover(); fmt.Sprint(r) != "breaker: nil fn" {
					t.Errorf("%s(nil fn) recovered %v, want a panic with breaker: nil fn", name, r)
				}
			}()
			call()
		}()
	}
	if n := reader.Total("blastradius.breaker.calls"); n != 0 {
		t.Fatalf("%d calls counted", n)
	}
}

// TestCallbackMayCallState proves callbacks run outside gobreaker's lock: a
// callback that calls State (which takes that lock) would deadlock otherwise.
func TestCallbackMayCallState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type seen struct{ from, to, inCallback breaker.State }
		var got []seen
		var b *breaker.Breaker
		b = mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenDuration(time.Second),
			breaker.WithOnStateChange(func(name string, from, to breaker.State) {
				got = append(got, seen{from, to, b.State()})
			}))
		ctx := context.Background()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = b.Do(ctx, fail)         // closed -> open
			time.Sleep(2 * time.Second) // open duration passes
			_ = b.Do(ctx, ok)           // open -> half-open -> closed
		}()
		<-done // a deadlock would leave the bubble's goroutine blocked forever
		// The probe's transition to half-open is dispatched before its fn
		// runs, so the callback sees the breaker half-open.
		want := []seen{
			{breaker.Closed, breaker.Open, breaker.Open},
			{breaker.Open, breaker.HalfOpen, breaker.HalfOpen},
			{breaker.HalfOpen, breaker.Closed, breaker.Closed},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("callbacks = %v, want %v", got, want)
		}
	})
}

// TestCallbackPanicDoesNotStopReports: a state-change callback that panics
// panics out of the call that dispatched it, and the breaker goes on
// dispatching later transitions to the callback, the metric and the log.
func TestCallbackPanicDoesNotStopReports(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := metrictest.New(t)
		var got []string
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenDuration(time.Second),
			breaker.WithMeterProvider(reader),
			breaker.WithOnStateChange(func(_ string, from, to breaker.State) {
				got = append(got, from.String()+">"+to.String())
				if to == breaker.Open {
					panic("callback bug")
				}
			}))
		ctx := context.Background()
		func() {
			defer func() {
				if v := recover(); v != "callback bug" {
					t.Fatalf("recovered %v, want the callback's panic", v)
				}
			}()
			_ = b.Do(ctx, fail) // closed -> open: the callback panics
		}()
		time.Sleep(2 * time.Second)
		_ = b.Do(ctx, ok) // open -> half-open -> closed
		if want := []string{"closed>open", "open>half-open", "half-open>closed"}; !slices.Equal(got, want) {
			t.Fatalf("callbacks = %v, want %v", got, want)
		}
		if n := reader.Total("blastradius.breaker.transitions"); n != 3 {
			t.Fatalf("transitions counted = %d, want 3", n)
		}
	})
}

// TestConcurrentHammer: 8 goroutines on one breaker; the counts add up.
func TestConcurrentHammer(t *testing.T) {
	reader := metrictest.New(t)
	var transitions atomic.Int64
	b := mustNew(t, breaker.WithMeterProvider(reader), breaker.WithConsecutiveFailures(3),
		breaker.WithOpenDuration(time.Millisecond),
		breaker.WithOnStateChange(func(string, breaker.State, breaker.State) { transitions.Add(1) }))
	const workers, perWorker = 8, 2000
	var calls, rejected atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				err := b.Do(context.Background(), func(context.Context) error {
					calls.Add(1)
					if (i+w)%4 == 0 {
						return errBoom
					}
					return nil
				})
				if errors.Is(err, breaker.ErrOpen) {
					rejected.Add(1)
				}
				_ = b.State()
			}
		}()
	}
	wg.Wait()
	counts := callCounts(reader)
	if total := counts["success"] + counts["failure"] + counts["rejected"]; total != workers*perWorker {
		t.Fatalf("recorded %d calls, want %d (%v)", total, workers*perWorker, counts)
	}
	if counts["rejected"] != rejected.Load() || counts["success"]+counts["failure"] != calls.Load() {
		t.Fatalf("metrics %v disagree with observed calls=%d rejected=%d", counts, calls.Load(), rejected.Load())
	}
	if got, want := reader.Total("blastradius.breaker.transitions"), transitions.Load(); got != want {
		t.Fatalf("transition counter %d, callbacks %d", got, want)
	}
}

func TestMetricsExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := metrictest.New(t)
		b := mustNew(t, breaker.WithMeterProvider(reader), breaker.WithConsecutiveFailures(2), breaker.WithOpenDuration(time.Second))
		ctx := context.Background()
		_ = b.Do(ctx, ok)
		_ = b.Do(ctx, ok)
		_ = b.Do(ctx, fail)
		_ = b.Do(ctx, fail) // trips
		_ = b.Do(ctx, ok)   // rejected
		_ = b.Do(ctx, ok)   // rejected
		want := map[string]int64{"success": 2, "failure": 2, "rejected": 2}
		if got := callCounts(reader); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("calls = %v, want %v", got, want)
		}
		if got := stateGauge(t, reader); got != 2 {
			t.Fatalf("state gauge = %v, want 2 (open)", got)
		}
		time.Sleep(2 * time.Second)
		_ = b.Do(ctx, ok)
		if got := stateGauge(t, reader); got != 0 {
			t.Fatalf("state gauge = %v, want 0 (closed)", got)
		}
		wantTrans := map[string]int64{"closed->open": 1, "open->half-open": 1, "half-open->closed": 1}
		if got := transitions(reader); fmt.Sprint(got) != fmt.Sprint(wantTrans) {
			t.Fatalf("transitions = %v, want %v", got, wantTrans)
		}
	})
}

// byAttrs returns the int64 counter name summed by the values of keys,
// joined with "->".
func byAttrs(r *metrictest.Reader, name string, keys ...string) map[string]int64 {
	out := map[string]int64{}
	for set, v := range r.Sums(name) {
		var vals []string
		for _, k := range keys {
			a, _ := set.Value(attribute.Key(k))
			vals = append(vals, a.AsString())
		}
		out[strings.Join(vals, "->")] += v
	}
	return out
}

func callCounts(r *metrictest.Reader) map[string]int64 {
	return byAttrs(r, "blastradius.breaker.calls", "outcome")
}

func transitions(r *metrictest.Reader) map[string]int64 {
	return byAttrs(r, "blastradius.breaker.transitions", "from", "to")
}

// stateGauge returns the state gauge of the breaker named "test".
func stateGauge(t *testing.T, r *metrictest.Reader) float64 {
	t.Helper()
	v, ok := r.Gauge("blastradius.breaker.state", "breaker.name", "test")
	if !ok {
		t.Fatal("no state gauge")
	}
	return v
}

package breaker_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/internal/spantest"
)

// traced runs call with a context carrying a recording span and returns
// the events of that span: their names, and each one's attributes.
func traced(t *testing.T, call func(ctx context.Context)) ([]string, []map[string]any) {
	t.Helper()
	rec := spantest.New(t)
	ctx, span := rec.Start(context.Background(), "call")
	call(ctx)
	span.End()
	s := rec.Span("call")
	var attrs []map[string]any
	for _, e := range s.Events() {
		attrs = append(attrs, spantest.Attrs(e.Attributes))
	}
	return spantest.Names(s), attrs
}

func wantEvents(t *testing.T, who string, names []string, attrs []map[string]any, want ...any) {
	t.Helper()
	var wantNames []string
	var wantAttrs []map[string]any
	for i := 0; i < len(want); i += 2 {
		wantNames = append(wantNames, want[i].(string))
		wantAttrs = append(wantAttrs, want[i+1].(map[string]any))
	}
	if !reflect.DeepEqual(names, wantNames) || !reflect.DeepEqual(attrs, wantAttrs) {
		t.Fatalf("%s: events %v %v, want %v %v", who, names, attrs, wantNames, wantAttrs)
	}
}

var quiet = breaker.WithLogger(slog.New(slog.DiscardHandler))

// TestTraceStates walks a breaker through open, half-open and closed with
// traced calls: each call's span shows the transitions it made and its
// rejection, if any.
func TestTraceStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := breaker.New("payments", breaker.WithConsecutiveFailures(1), breaker.WithOpenDuration(time.Second),
			breaker.WithHalfOpenProbes(1), quiet)
		if err != nil {
			t.Fatal(err)
		}
		names, attrs := traced(t, func(ctx context.Context) { _ = b.Do(ctx, fail) })
		wantEvents(t, "tripping call", names, attrs,
			"blastradius.breaker.transition", map[string]any{"breaker.name": "payments", "from": "closed", "to": "open"})

		names, attrs = traced(t, func(ctx context.Context) {
			if err := b.Do(ctx, ok); !errors.Is(err, breaker.ErrOpen) {
				t.Errorf("err = %v, want ErrOpen", err)
			}
		})
		wantEvents(t, "call while open", names, attrs,
			"blastradius.breaker.rejected", map[string]any{"breaker.name": "payments", "reason": "open"})

		time.Sleep(2 * time.Second)
		release := make(chan struct{})
		var probe struct {
			names []string
			attrs []map[string]any
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			probe.names, probe.attrs = traced(t, func(ctx context.Context) {
				_ = b.Do(ctx, func(context.Context) error { <-release; return nil })
			})
		})
		synctest.Wait() // the probe is in fn
		names, attrs = traced(t, func(ctx context.Context) { _ = b.Do(ctx, ok) })
		wantEvents(t, "call while the probe is in flight", names, attrs,
			"blastradius.breaker.rejected", map[string]any{"breaker.name": "payments", "reason": "half-open"})
		close(release)
		wg.Wait()
		wantEvents(t, "probe", probe.names, probe.attrs,
			"blastradius.breaker.transition", map[string]any{"breaker.name": "payments", "from": "open", "to": "half-open"},
			"blastradius.breaker.transition", map[string]any{"breaker.name": "payments", "from": "half-open", "to": "closed"})

		names, attrs = traced(t, func(ctx context.Context) { _ = b.Do(ctx, ok) })
		wantEvents(t, "call while closed", names, attrs)
	})
}

func TestTraceThrottled(t *testing.T) {
	b, err := breaker.New("payments", breaker.WithAdaptiveThrottle(1, breaker.WithRandom(func() float64 { return 0 })), quiet)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Do(context.Background(), fail) // one attempt, no accept: throttling probability 1/2
	names, attrs := traced(t, func(ctx context.Context) {
		if err := b.Do(ctx, ok); !errors.Is(err, breaker.ErrThrottled) {
			t.Errorf("err = %v, want ErrThrottled", err)
		}
	})
	wantEvents(t, "throttled call", names, attrs,
		"blastradius.breaker.rejected", map[string]any{"breaker.name": "payments", "reason": "throttled"})
}

func TestTraceRetries(t *testing.T) {
	with := func(kv ...any) map[string]any {
		m := map[string]any{"breaker.name": "payments"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	t.Run("exhausted", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, err := breaker.New("payments", breaker.WithRetries(2, breaker.WithBackoff(100*time.Millisecond, time.Second),
				breaker.WithJitter(0)), quiet)
			if err != nil {
				t.Fatal(err)
			}
			names, attrs := traced(t, func(ctx context.Context) { _ = b.Do(ctx, fail) })
			wantEvents(t, "call", names, attrs,
				"blastradius.breaker.retry", with("attempt", int64(2), "wait", 0.1, "reason", "boom"),
				"blastradius.breaker.retry", with("attempt", int64(3), "wait", 0.2, "reason", "boom"),
				"blastradius.breaker.retry.stopped", with("attempts", int64(3), "reason", breaker.ReasonExhausted))
		})
	})
	t.Run("budget", func(t *testing.T) {
		b, err := breaker.New("payments", breaker.WithRetries(1, breaker.WithBudgetRatio(0), breaker.WithBudgetMinPerSecond(0)), quiet)
		if err != nil {
			t.Fatal(err)
		}
		names, attrs := traced(t, func(ctx context.Context) { _ = b.Do(ctx, fail) })
		wantEvents(t, "call", names, attrs,
			"blastradius.breaker.retry.stopped", with("attempts", int64(1), "reason", breaker.ReasonBudget))
	})
}

// TestTraceTransport: through a Transport, the events land on the span of
// the request's context (otelhttp's client span, when its transport wraps
// this one).
func TestTraceTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeBase{respond: failFirst(1, http.StatusServiceUnavailable, nil)}
		tr := mustTransport(t, base, breaker.WithRetries(1, generous(t), breaker.WithBackoff(100*time.Millisecond, time.Second),
			breaker.WithJitter(0)), quiet)
		names, attrs := traced(t, func(ctx context.Context) {
			req := httptest.NewRequestWithContext(ctx, "GET", "http://api.test/orders", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("RoundTrip: %v, %v", resp, err)
			}
			_ = resp.Body.Close()
		})
		if len(attrs) == 1 {
			if r, _ := attrs[0]["reason"].(string); !strings.Contains(r, "503") {
				t.Errorf("retry reason %q, want the 503's error text", r)
			}
			delete(attrs[0], "reason")
		}
		wantEvents(t, "request", names, attrs,
			"blastradius.breaker.retry", map[string]any{"breaker.name": "api.test", "attempt": int64(2), "wait": 0.1})
	})
}

// TestNotRecordingAllocatesNothing: under a sampled-out span, Do and Call
// allocate nothing on success or rejection, as without a span
// (TestDoAllocatesNothing).
func TestNotRecordingAllocatesNothing(t *testing.T) {
	ctx := spantest.NotRecording(context.Background())
	b := mustNew(t, breaker.WithRetries(3), quiet)
	f := func(context.Context) (int, error) { return 1, nil }
	if n := testing.AllocsPerRun(1000, func() { _ = b.Do(ctx, ok) }); n != 0 {
		t.Errorf("Do success allocates %v per call", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = breaker.Call(ctx, b, f) }); n != 0 {
		t.Errorf("Call success allocates %v per call", n)
	}
	open := mustNew(t, breaker.WithConsecutiveFailures(1), quiet)
	_ = open.Do(ctx, fail)
	if n := testing.AllocsPerRun(1000, func() { _ = open.Do(ctx, ok) }); n != 0 {
		t.Errorf("Do rejection allocates %v per call", n)
	}
}

// BenchmarkTrace prices the breaker's trace recording: each case untraced,
// under a sampled-out span and under a recording one, interleaved (see
// spantest.Bench), with the ratios to untraced.
func BenchmarkTrace(b *testing.B) {
	closed, err := breaker.New("payments", breaker.WithRetries(3), quiet)
	if err != nil {
		b.Fatal(err)
	}
	open, err := breaker.New("payments", breaker.WithConsecutiveFailures(1), breaker.WithOpenDuration(time.Hour), quiet)
	if err != nil {
		b.Fatal(err)
	}
	_ = open.Do(context.Background(), fail)
	f := func(context.Context) (int, error) { return 1, nil }
	for _, c := range []struct {
		name string
		op   func(ctx context.Context)
	}{
		{"Do/success", func(ctx context.Context) { _ = closed.Do(ctx, ok) }},
		{"Call/success", func(ctx context.Context) { _, _ = breaker.Call(ctx, closed, f) }},
		{"Do/rejected", func(ctx context.Context) { _ = open.Do(ctx, ok) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			spantest.Bench(b, func(ctx context.Context) func() { return func() { c.op(ctx) } })
		})
	}
}

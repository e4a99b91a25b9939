package breaker_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/internal/metrictest"
)

// Every benchmark here has a serial and a parallel form, and the raw
// gobreaker baselines run in the same process with the same settings, so
// the overhead of blastradius is read as a ratio.

func bench(b *testing.B, op func(context.Context)) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			op(ctx)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				op(ctx)
			}
		})
	})
}

func newBench(b *testing.B, opts ...breaker.Option) *breaker.Breaker {
	br, err := breaker.New("bench", append([]breaker.Option{breaker.WithOpenDuration(time.Hour)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	return br
}

func rawGobreaker() *gobreaker.CircuitBreaker[struct{}] {
	return gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "bench",
		MaxRequests: 1,
		Timeout:     time.Hour,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
	})
}

func BenchmarkDo(b *testing.B) {
	br := newBench(b)
	bench(b, func(ctx context.Context) { _ = br.Do(ctx, ok) })
}

// BenchmarkDoSDK is BenchmarkDo with a real sdk/metric provider recording
// every call, to show the cost of live metrics.
func BenchmarkDoSDK(b *testing.B) {
	br := newBench(b, breaker.WithMeterProvider(metrictest.New(b)))
	bench(b, func(ctx context.Context) { _ = br.Do(ctx, ok) })
}

func BenchmarkCall(b *testing.B) {
	br := newBench(b)
	f := func(context.Context) (int, error) { return 1, nil }
	bench(b, func(ctx context.Context) { _, _ = breaker.Call(ctx, br, f) })
}

func BenchmarkGobreakerExecute(b *testing.B) {
	cb := rawGobreaker()
	f := func() (struct{}, error) { return struct{}{}, nil }
	bench(b, func(context.Context) { _, _ = cb.Execute(f) })
}

func BenchmarkDoOpen(b *testing.B) {
	br := newBench(b)
	for range 5 {
		_ = br.Do(context.Background(), fail)
	}
	if br.State() != breaker.Open {
		b.Fatal("not open")
	}
	bench(b, func(ctx context.Context) { _ = br.Do(ctx, ok) })
}

func BenchmarkGobreakerOpen(b *testing.B) {
	cb := rawGobreaker()
	for range 5 {
		_, _ = cb.Execute(func() (struct{}, error) { return struct{}{}, errBoom })
	}
	if cb.State() != gobreaker.StateOpen {
		b.Fatal("not open")
	}
	f := func() (struct{}, error) { return struct{}{}, nil }
	bench(b, func(context.Context) { _, _ = cb.Execute(f) })
}

// TestDoAllocatesNothing backs the zero-allocation claim of the hot path:
// Do and Call on success, with the default (global, no-op) meter provider
// and with a real SDK provider, with and without retries and throttling;
// and Do on rejection.
func TestDoAllocatesNothing(t *testing.T) {
	mp := metrictest.New(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		opts   []breaker.Option
		reject bool // also trip the breaker and check a rejection
	}{
		{"global", nil, true},
		{"sdk", []breaker.Option{breaker.WithMeterProvider(mp)}, true},
		{"retries", []breaker.Option{breaker.WithRetries(3)}, false},
		{"retries+sdk", []breaker.Option{breaker.WithRetries(3), breaker.WithMeterProvider(mp)}, false},
		{"retries+throttle", []breaker.Option{breaker.WithRetries(3), breaker.WithAdaptiveThrottle(2)}, false},
	} {
		br, err := breaker.New("allocs", tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(1000, func() { _ = br.Do(ctx, ok) }); n != 0 {
			t.Errorf("%s: Do success allocates %v per call", tc.name, n)
		}
		f := func(context.Context) (int, error) { return 1, nil }
		if n := testing.AllocsPerRun(1000, func() { _, _ = breaker.Call(ctx, br, f) }); n != 0 {
			t.Errorf("%s: Call success allocates %v per call", tc.name, n)
		}
		if !tc.reject {
			continue
		}
		for range 5 {
			_ = br.Do(ctx, fail)
		}
		if n := testing.AllocsPerRun(1000, func() { _ = br.Do(ctx, ok) }); n != 0 {
			t.Errorf("%s: Do rejection allocates %v per call", tc.name, n)
		}
	}
}

// BenchmarkDoRetryEnabled is BenchmarkDo with 3 retries and the default
// budget configured; the first attempt succeeds, so the only extra work is
// the budget deposit (an atomic add, and a clock read every 64 calls).
// Target: at most 1.2× BenchmarkDo, 0 allocs/op.
func BenchmarkDoRetryEnabled(b *testing.B) {
	br := newBench(b, breaker.WithRetries(3))
	bench(b, func(ctx context.Context) { _ = br.Do(ctx, ok) })
}

// BenchmarkDoThrottle is BenchmarkDo with adaptive throttling, which reads
// the window (one clock read) on every call.
func BenchmarkDoThrottle(b *testing.B) {
	br := newBench(b, breaker.WithAdaptiveThrottle(2))
	bench(b, func(ctx context.Context) { _ = br.Do(ctx, ok) })
}

// BenchmarkTransport measures a GET to a loopback httptest server through
// the bare http.Transport and through breaker.NewTransport over it (3
// retries, default budget), in the same run; the overhead is the ratio.
func BenchmarkTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	bare := &http.Transport{MaxIdleConnsPerHost: 64}
	defer bare.CloseIdleConnections()
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", bare},
		{"breaker", mustTransport(b, bare, breaker.WithRetries(3))},
	} {
		client := &http.Client{Transport: tc.rt}
		get := func() {
			resp, err := client.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		b.Run(tc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				get()
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get()
				}
			})
		})
	}
}

// interleaved runs base and with in alternating batches and reports the
// median over batches of with's time divided by base's time as "ratio".
// The machine these run on is shared, so measuring both sides in
// consecutive batches, in alternating order, lets load from other
// processes hit both alike; a ratio from separate benchmarks is only as
// good as the load was steady between them.
func interleaved(b *testing.B, batch int, base, with func()) {
	run := func(f func()) time.Duration {
		s := time.Now()
		for range batch {
			f()
		}
		return time.Since(s)
	}
	b.Run("serial", func(b *testing.B) {
		var ratios []float64
		i := 0
		for b.Loop() {
			var tb, tw time.Duration
			if i%2 == 0 {
				tb, tw = run(base), run(with)
			} else {
				tw, tb = run(with), run(base)
			}
			i++
			ratios = append(ratios, float64(tw)/float64(tb))
		}
		b.ReportMetric(median(ratios), "ratio")
	})
	b.Run("parallel", func(b *testing.B) {
		var mu sync.Mutex
		var ratios []float64
		b.RunParallel(func(pb *testing.PB) {
			var local []float64
			i := 0
			for pb.Next() {
				var tb, tw time.Duration
				if i%2 == 0 {
					tb, tw = run(base), run(with)
				} else {
					tw, tb = run(with), run(base)
				}
				i++
				local = append(local, float64(tw)/float64(tb))
			}
			mu.Lock()
			ratios = append(ratios, local...)
			mu.Unlock()
		})
		b.ReportMetric(median(ratios), "ratio")
	})
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// BenchmarkDoOverhead is BenchmarkDo against BenchmarkGobreakerExecute (raw
// gobreaker, same settings), interleaved in batches of 256 calls; "ratio"
// is blastradius over gobreaker. Target: at most 1.15.
func BenchmarkDoOverhead(b *testing.B) {
	br, cb := newBench(b), rawGobreaker()
	ctx := context.Background()
	f := func() (struct{}, error) { return struct{}{}, nil }
	interleaved(b, 256, func() { _, _ = cb.Execute(f) }, func() { _ = br.Do(ctx, ok) })
}

// BenchmarkRetryOverhead is BenchmarkDoRetryEnabled against BenchmarkDo,
// interleaved in batches of 256 calls; "ratio" is with-retries over
// without. Target: at most 1.2.
func BenchmarkRetryOverhead(b *testing.B) {
	plain, with := newBench(b), newBench(b, breaker.WithRetries(3))
	ctx := context.Background()
	interleaved(b, 256, func() { _ = plain.Do(ctx, ok) }, func() { _ = with.Do(ctx, ok) })
}

// BenchmarkTransportOverhead is BenchmarkTransport's breaker against bare,
// interleaved in batches of 16 GETs to a loopback httptest server; "ratio"
// is breaker over bare.
func BenchmarkTransportOverhead(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	bare := &http.Transport{MaxIdleConnsPerHost: 64}
	defer bare.CloseIdleConnections()
	get := func(c *http.Client) func() {
		return func() {
			resp, err := c.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
	interleaved(b, 16, get(&http.Client{Transport: bare}),
		get(&http.Client{Transport: mustTransport(b, bare, breaker.WithRetries(3))}))
}

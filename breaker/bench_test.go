package breaker_test

import (
	"context"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/blastradius/blastradius/breaker"
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
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	br := newBench(b, breaker.WithMeterProvider(mp))
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
// Do and Call on success, and Do on rejection, with the default (global,
// no-op) meter provider and with a real SDK provider.
func TestDoAllocatesNothing(t *testing.T) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts []breaker.Option
	}{{"global", nil}, {"sdk", []breaker.Option{breaker.WithMeterProvider(mp)}}} {
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
		for range 5 {
			_ = br.Do(ctx, fail)
		}
		if n := testing.AllocsPerRun(1000, func() { _ = br.Do(ctx, ok) }); n != 0 {
			t.Errorf("%s: Do rejection allocates %v per call", tc.name, n)
		}
	}
}

package telemetry_test

import (
	"context"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/blastradius/blastradius/internal/telemetry"
)

func TestCountsReportExactValues(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	m := telemetry.Meter(mp, "test")
	c := telemetry.NewCounts(m, "blastradius.test.calls", "calls", "{call}",
		[]attribute.KeyValue{attribute.String("outcome", "ok")},
		[]attribute.KeyValue{attribute.String("outcome", "error")},
		[]attribute.KeyValue{attribute.String("outcome", "never")},
	)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Add(0, 1)
			}
			c.Add(1, 2)
		}()
	}
	wg.Wait()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != "blastradius.test.calls" {
				continue
			}
			sum := mt.Data.(metricdata.Sum[int64])
			if !sum.IsMonotonic {
				t.Error("counter is not monotonic")
			}
			for _, dp := range sum.DataPoints {
				v, _ := dp.Attributes.Value("outcome")
				got[v.AsString()] = dp.Value
			}
		}
	}
	if len(got) != 2 || got["ok"] != 8000 || got["error"] != 16 {
		t.Fatalf("observed %v, want ok=8000 error=16 and no zero series", got)
	}
	if c.Load(0) != 8000 {
		t.Fatalf("Load(0) = %d", c.Load(0))
	}
}

func TestCountsAddAllocatesNothing(t *testing.T) {
	c := telemetry.NewCounts(telemetry.Meter(nil, "test"), "blastradius.test.allocs", "", "",
		[]attribute.KeyValue{attribute.String("k", "v")})
	if n := testing.AllocsPerRun(1000, func() { c.Add(0, 1) }); n != 0 {
		t.Fatalf("Add allocates %v", n)
	}
}

// TestCountsSharingASeriesSum pins the SDK behaviour that lets several
// objects report into one series without shared state: two Counts observing
// the same attribute set of the same instrument are summed at collection.
func TestCountsSharingASeriesSum(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	m := telemetry.Meter(mp, "test")
	a := telemetry.NewCounts(m, "blastradius.test.shared", "", "", nil)
	b := telemetry.NewCounts(m, "blastradius.test.shared", "", "", nil)
	a.Add(0, 3)
	b.Add(0, 4)
	for round, want := range []int64{7, 9} {
		if round == 1 {
			a.Add(0, 2)
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, sm := range rm.ScopeMetrics {
			for _, mt := range sm.Metrics {
				for _, dp := range mt.Data.(metricdata.Sum[int64]).DataPoints {
					got = append(got, dp.Value)
				}
			}
		}
		if len(got) != 1 || got[0] != want {
			t.Fatalf("collection %d: points %v, want one point of %d", round, got, want)
		}
	}
}

package fleet_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/blastradius/blastradius/fleet"
)

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// sumBy returns the counter's value for attribute key=val.
func sumBy(t *testing.T, agg metricdata.Aggregation, key, val string) int64 {
	t.Helper()
	s, ok := agg.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%T is not an int64 sum", agg)
	}
	var n int64
	for _, dp := range s.DataPoints {
		if v, ok := dp.Attributes.Value(attribute.Key(key)); ok && v.AsString() == val || key == "" {
			n += dp.Value
		}
	}
	return n
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		mem := fleet.NewMemoryStore()
		f := newFaulty(mem)
		n := newNode(t, f, "i0", []string{"checkout-v2"}, fleet.WithMeterProvider(mp))
		synctest.Wait()
		p := newPublisher(t, mem)
		ctx := t.Context()
		time.Sleep(time.Millisecond)
		mustPub(t)(p.Kill(ctx, "checkout-v2", "x"))
		mustPub(t)(p.SetPercent(ctx, "checkout-v2", 5))
		mustPub(t)(p.PublishConfig(ctx, []byte(`{"version":"1","gates":[{"name":"nope"}]}`)))
		synctest.Wait()
		_ = n

		m := collect(t, reader)
		if got := sumBy(t, m["blastradius.fleet.applies"], "op", "kill"); got != 1 {
			t.Errorf("kill applies = %d", got)
		}
		if got := sumBy(t, m["blastradius.fleet.applies"], "op", "percent"); got != 1 {
			t.Errorf("percent applies = %d", got)
		}
		if got := sumBy(t, m["blastradius.fleet.rejections"], "op", "config"); got != 1 {
			t.Errorf("config rejections = %d", got)
		}
		h, ok := m["blastradius.fleet.apply.latency"].(metricdata.Histogram[float64])
		if !ok || len(h.DataPoints) == 0 {
			t.Fatalf("latency: %#v", m["blastradius.fleet.apply.latency"])
		}
		var count uint64
		for _, dp := range h.DataPoints {
			count += dp.Count
			if dp.Sum != 0 {
				t.Errorf("latency sum %v, want 0 in a bubble where nothing waits", dp.Sum)
			}
		}
		if count != 2 {
			t.Errorf("latency count %d, want 2", count)
		}

		// An outage: store errors, staleness, then a reconnect.
		f.partition()
		time.Sleep(5 * time.Second)
		m = collect(t, reader)
		for _, op := range []string{"heartbeat", "subscribe"} {
			if got := sumBy(t, m["blastradius.fleet.store.errors"], "op", op); got == 0 {
				t.Errorf("no %s errors counted during the partition", op)
			}
		}
		g, ok := m["blastradius.fleet.staleness"].(metricdata.Gauge[float64])
		if !ok || len(g.DataPoints) != 1 || g.DataPoints[0].Value < 4 {
			t.Fatalf("staleness: %#v", m["blastradius.fleet.staleness"])
		}
		if v, _ := g.DataPoints[0].Attributes.Value("service.instance.id"); v.AsString() != "i0" {
			t.Errorf("staleness attributes %v", g.DataPoints[0].Attributes)
		}
		f.heal()
		time.Sleep(time.Second)
		synctest.Wait()
		m = collect(t, reader)
		if got := sumBy(t, m["blastradius.fleet.reconnects"], "", ""); got != 1 {
			t.Errorf("reconnects = %d, want 1", got)
		}
		if g := m["blastradius.fleet.staleness"].(metricdata.Gauge[float64]); g.DataPoints[0].Value > 1 {
			t.Errorf("staleness %v s after the heal", g.DataPoints[0].Value)
		}
	})
}

package fleet_test

import (
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/internal/metrictest"
)

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mr := metrictest.New(t)
		mem := fleet.NewMemoryStore()
		f := newFaulty(mem)
		newNode(t, f, "i0", []string{"checkout-v2"}, fleet.WithMeterProvider(mr))
		synctest.Wait()
		p := newPublisher(t, mem)
		ctx := t.Context()
		time.Sleep(time.Millisecond)
		mustPub(t)(p.Kill(ctx, "checkout-v2", "x"))
		mustPub(t)(p.SetPercent(ctx, "checkout-v2", 5))
		mustPub(t)(p.PublishConfig(ctx, []byte(`{"version":"1","gates":[{"name":"nope"}]}`)))
		synctest.Wait()

		if got := mr.Sum("blastradius.fleet.applies", "op", "kill"); got != 1 {
			t.Errorf("kill applies = %d", got)
		}
		if got := mr.Sum("blastradius.fleet.applies", "op", "percent"); got != 1 {
			t.Errorf("percent applies = %d", got)
		}
		if got := mr.Sum("blastradius.fleet.rejections", "op", "config"); got != 1 {
			t.Errorf("config rejections = %d", got)
		}
		for _, op := range []string{"kill", "percent"} {
			if got := mr.HistogramCount("blastradius.fleet.apply.latency", "op", op); got != 1 {
				t.Errorf("%s latency count %d, want 1", op, got)
			}
		}
		h, _ := mr.Metric("blastradius.fleet.apply.latency").(metricdata.Histogram[float64])
		for _, dp := range h.DataPoints {
			if dp.Sum != 0 {
				t.Errorf("latency sum %v, want 0 in a bubble where nothing waits", dp.Sum)
			}
		}

		// An outage: store errors, staleness, then a reconnect.
		f.partition()
		time.Sleep(5 * time.Second)
		for _, op := range []string{"heartbeat", "subscribe"} {
			if got := mr.Sum("blastradius.fleet.store.errors", "op", op); got == 0 {
				t.Errorf("no %s errors counted during the partition", op)
			}
		}
		if v, ok := mr.Gauge("blastradius.fleet.staleness", "service.instance.id", "i0"); !ok || v < 4 {
			t.Fatalf("staleness of i0: %v (reported: %v), want at least 4 s", v, ok)
		}
		f.heal()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := mr.Total("blastradius.fleet.reconnects"); got != 1 {
			t.Errorf("reconnects = %d, want 1", got)
		}
		if v, ok := mr.Gauge("blastradius.fleet.staleness", "service.instance.id", "i0"); !ok || v > 1 {
			t.Errorf("staleness of i0 %v s after the heal (reported: %v)", v, ok)
		}
	})
}

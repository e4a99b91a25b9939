package fleet

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/blastradius/blastradius/internal/telemetry"
)

// Attribute names of the fleet's instruments.
const (
	attrOp       = "op"
	attrInstance = "service.instance.id"
)

// Values of the op attribute beside the record ops: a record that could not
// be decoded, and the store calls of blastradius.fleet.store.errors.
const (
	opUnknown   = "unknown"
	opRead      = "read"
	opHeartbeat = "heartbeat"
	opSubscribe = "subscribe"
	opCache     = "cache"
)

type metrics struct {
	applies    metric.Int64Counter
	rejections metric.Int64Counter
	reconnects metric.Int64Counter
	errors     metric.Int64Counter
	latency    metric.Float64Histogram
	addOpts    map[string][]metric.AddOption
	recOpts    map[string][]metric.RecordOption
	none       []metric.AddOption
}

func newMetrics(mp metric.MeterProvider, s *Syncer) *metrics {
	m := telemetry.Meter(mp, "fleet")
	ms := &metrics{
		applies: telemetry.Counter(m, "blastradius.fleet.applies",
			"Records a fleet instance applied from its store, by op.", "{record}"),
		rejections: telemetry.Counter(m, "blastradius.fleet.rejections",
			"Records a fleet instance refused (a config document its registry rejected, or undecodable content), by op.", "{record}"),
		reconnects: telemetry.Counter(m, "blastradius.fleet.reconnects",
			"Re-established store subscriptions of a fleet instance (not counting the first).", "{subscription}"),
		errors: telemetry.Counter(m, "blastradius.fleet.store.errors",
			"Failed store calls of a fleet instance, by op (read, heartbeat, subscribe, cache).", "{call}"),
		latency: telemetry.Histogram(m, "blastradius.fleet.apply.latency",
			"From the store's publish time of a record to its apply on a fleet instance (includes clock skew between the store and the instance).", "s"),
		addOpts: make(map[string][]metric.AddOption),
		recOpts: make(map[string][]metric.RecordOption),
	}
	for _, op := range []string{OpConfig, OpKill, OpResume, OpPercent, opUnknown, opRead, opHeartbeat, opSubscribe, opCache} {
		ms.addOpts[op] = telemetry.AddOpts(attribute.String(attrOp, op))
		ms.recOpts[op] = telemetry.RecordOpts(attribute.String(attrOp, op))
	}
	obs := telemetry.ObserveOpts(attribute.String(attrInstance, s.cfg.id))
	g, err := m.Float64ObservableGauge("blastradius.fleet.staleness",
		metric.WithDescription("Seconds since a fleet instance last confirmed its state current with its store (a successful read, or a heartbeat showing the applied head)."),
		metric.WithUnit("s"))
	if err != nil {
		otel.Handle(err)
	} else if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(g, s.staleness().Seconds(), obs...)
		return nil
	}, g); err != nil {
		otel.Handle(err)
	}
	return ms
}

func (m *metrics) opts(op string) []metric.AddOption {
	if o, ok := m.addOpts[op]; ok {
		return o
	}
	return m.addOpts[opUnknown]
}

func (m *metrics) apply(op string, lat time.Duration, known bool) {
	m.applies.Add(context.Background(), 1, m.opts(op)...)
	if known {
		m.latency.Record(context.Background(), max(lat, 0).Seconds(), m.recOpts[op]...)
	}
}

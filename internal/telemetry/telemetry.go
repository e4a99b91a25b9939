package telemetry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"
)

// ScopePrefix is the import path prefix of blastradius packages; meters are
// named by the package's import path.
const ScopePrefix = "github.com/blastradius/blastradius/"

// Meter returns the meter for a blastradius package (for example "breaker"),
// taken from mp, or from the otel global provider when mp is nil.
func Meter(mp metric.MeterProvider, pkg string) metric.Meter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(ScopePrefix + pkg)
}

// Counter creates an Int64Counter. An error goes to otel.Handle and a no-op
// counter is returned, so instrumentation never breaks the caller.
func Counter(m metric.Meter, name, desc, unit string) metric.Int64Counter {
	c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
	if err != nil {
		otel.Handle(err)
		return noop.Int64Counter{}
	}
	return c
}

// Histogram creates a Float64Histogram, with the same error handling as Counter.
func Histogram(m metric.Meter, name, desc, unit string) metric.Float64Histogram {
	h, err := m.Float64Histogram(name, metric.WithDescription(desc), metric.WithUnit(unit))
	if err != nil {
		otel.Handle(err)
		return noop.Float64Histogram{}
	}
	return h
}

// Gauge creates (or, for a name the meter already has, reuses) the
// Int64ObservableGauge name and registers cb for it with RegisterCallback,
// so every object that reports into one gauge (a breaker per host, say) has
// its callback called. A callback passed at the instrument's creation would
// be dropped by the SDK for every caller after the first. Errors go to
// otel.Handle, as for Counter.
func Gauge(m metric.Meter, name, desc, unit string, cb metric.Int64Callback) {
	g, err := m.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
	if err != nil {
		otel.Handle(err)
		return
	}
	if _, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		return cb(ctx, int64Observer{o: o, g: g})
	}, g); err != nil {
		otel.Handle(err)
	}
}

// int64Observer observes values of one gauge through a multi-instrument
// Observer.
type int64Observer struct {
	embedded.Int64Observer
	o metric.Observer
	g metric.Int64Observable
}

func (i int64Observer) Observe(v int64, opts ...metric.ObserveOption) {
	i.o.ObserveInt64(i.g, v, opts...)
}

// AddOpts precomputes the option slice for Add calls with a fixed attribute
// set. Passing the returned slice as opts... to Counter.Add allocates nothing.
func AddOpts(kv ...attribute.KeyValue) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

// RecordOpts is AddOpts for histogram Record calls.
func RecordOpts(kv ...attribute.KeyValue) []metric.RecordOption {
	return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

// ObserveOpts is AddOpts for observable-gauge callbacks.
func ObserveOpts(kv ...attribute.KeyValue) []metric.ObserveOption {
	return []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

package telemetry

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
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

// Gauge creates an Int64ObservableGauge whose callback is cb, with the same
// error handling as Counter.
func Gauge(m metric.Meter, name, desc, unit string, cb metric.Int64Callback) metric.Int64ObservableGauge {
	g, err := m.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit), metric.WithInt64Callback(cb))
	if err != nil {
		otel.Handle(err)
		return noop.Int64ObservableGauge{}
	}
	return g
}

// FloatGauge creates a Float64ObservableGauge whose callback is cb, with the
// same error handling as Counter.
func FloatGauge(m metric.Meter, name, desc, unit string, cb metric.Float64Callback) metric.Float64ObservableGauge {
	g, err := m.Float64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit), metric.WithFloat64Callback(cb))
	if err != nil {
		otel.Handle(err)
		return noop.Float64ObservableGauge{}
	}
	return g
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

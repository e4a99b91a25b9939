// Package metrictest reads blastradius metrics in tests: a real SDK meter
// provider backed by a ManualReader, and lookups of counter sums, gauge
// values and histogram counts by instrument name and attribute set.
package metrictest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Reader is a meter provider and the ManualReader that collects from it.
type Reader struct {
	*sdkmetric.MeterProvider
	Manual *sdkmetric.ManualReader
	t      testing.TB
}

// New returns a Reader whose provider is shut down when the test ends.
func New(t testing.TB) *Reader {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &Reader{MeterProvider: mp, Manual: r, t: t}
}

// Collect collects every metric, failing the test on an error.
func (r *Reader) Collect() metricdata.ResourceMetrics {
	r.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Manual.Collect(context.Background(), &rm); err != nil {
		r.t.Fatalf("collect: %v", err)
	}
	return rm
}

// Metric returns the data of instrument name, or nil if it recorded nothing.
func (r *Reader) Metric(name string) metricdata.Aggregation {
	r.t.Helper()
	for _, sm := range r.Collect().ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data
			}
		}
	}
	return nil
}

// Attrs builds an attribute set from key, value string pairs.
func Attrs(kv ...string) attribute.Set {
	var a []attribute.KeyValue
	for i := 0; i+1 < len(kv); i += 2 {
		a = append(a, attribute.String(kv[i], kv[i+1]))
	}
	return attribute.NewSet(a...)
}

// Sum returns the int64 counter name's value at exactly the attribute set
// of kv (key, value string pairs), or 0.
func (r *Reader) Sum(name string, kv ...string) int64 {
	r.t.Helper()
	want := Attrs(kv...)
	for set, v := range r.Sums(name) {
		if set.Equals(&want) {
			return v
		}
	}
	return 0
}

// Total returns the int64 counter name's value summed over every attribute
// set.
func (r *Reader) Total(name string) int64 {
	r.t.Helper()
	var n int64
	for _, v := range r.Sums(name) {
		n += v
	}
	return n
}

// Sums returns every data point of the int64 counter name by attribute set.
// It fails the test if name is not an int64 sum.
func (r *Reader) Sums(name string) map[attribute.Set]int64 {
	r.t.Helper()
	out := map[attribute.Set]int64{}
	switch d := r.Metric(name).(type) {
	case nil:
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			out[dp.Attributes] = dp.Value
		}
	default:
		r.t.Fatalf("%s is %T, not an int64 sum", name, d)
	}
	return out
}

// Gauge returns the value of gauge name (int64 or float64) at exactly the
// attribute set of kv, and whether it has that data point.
func (r *Reader) Gauge(name string, kv ...string) (float64, bool) {
	r.t.Helper()
	want := Attrs(kv...)
	switch d := r.Metric(name).(type) {
	case nil:
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			if dp.Attributes.Equals(&want) {
				return float64(dp.Value), true
			}
		}
	case metricdata.Gauge[float64]:
		for _, dp := range d.DataPoints {
			if dp.Attributes.Equals(&want) {
				return dp.Value, true
			}
		}
	default:
		r.t.Fatalf("%s is %T, not a gauge", name, d)
	}
	return 0, false
}

// HistogramCount returns how many values histogram name recorded at exactly
// the attribute set of kv.
func (r *Reader) HistogramCount(name string, kv ...string) uint64 {
	r.t.Helper()
	want := Attrs(kv...)
	switch d := r.Metric(name).(type) {
	case nil:
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			if dp.Attributes.Equals(&want) {
				return dp.Count
			}
		}
	case metricdata.Histogram[int64]:
		for _, dp := range d.DataPoints {
			if dp.Attributes.Equals(&want) {
				return dp.Count
			}
		}
	default:
		r.t.Fatalf("%s is %T, not a histogram", name, d)
	}
	return 0
}

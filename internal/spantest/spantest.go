// Package spantest reads the spans blastradius records on in tests: a real
// SDK tracer provider backed by a SpanRecorder, lookups of events and
// attributes, a context whose span does not record, and a benchmark of an
// operation untraced, under a sampled-out span and under a recording one.
package spantest

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Recorder is a tracer provider that samples every span and the
// SpanRecorder that keeps them.
type Recorder struct {
	*tracetest.SpanRecorder
	tp *sdktrace.TracerProvider
	t  testing.TB
}

// New returns a Recorder whose provider is shut down when the test ends.
func New(t testing.TB) *Recorder {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &Recorder{SpanRecorder: sr, tp: tp, t: t}
}

// Start starts a recording span named name in ctx, as a server
// instrumentation such as otelhttp would.
func (r *Recorder) Start(ctx context.Context, name string) (context.Context, trace.Span) {
	return r.tp.Tracer("spantest").Start(ctx, name)
}

// Span returns the one ended span named name, failing the test if there is
// not exactly one.
func (r *Recorder) Span(name string) sdktrace.ReadOnlySpan {
	r.t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range r.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		r.t.Fatalf("%d ended spans named %q, want 1", len(found), name)
	}
	return found[0]
}

// Events returns the events of s named name, in order, each as the map of
// its attributes (Attrs).
func Events(s sdktrace.ReadOnlySpan, name string) []map[string]any {
	var evs []map[string]any
	for _, e := range s.Events() {
		if e.Name == name {
			evs = append(evs, Attrs(e.Attributes))
		}
	}
	return evs
}

// Names returns the names of the events of s, in order.
func Names(s sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, e := range s.Events() {
		names = append(names, e.Name)
	}
	return names
}

// Attrs returns kvs as a map from key to value (string, int64, float64,
// bool, or a slice of these), for comparison with reflect.DeepEqual.
func Attrs(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

// NotRecording returns ctx with a span that is valid but not recording:
// that of a request whose trace was sampled out.
func NotRecording(ctx context.Context) context.Context {
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1},
		SpanID:  trace.SpanID{1},
	}))
}

// block is the number of operations per span in Bench: below the SDK's
// default limit of 128 events per span, so that every event is stored
// rather than evicting an older one.
const block = 100

// Bench measures an operation three ways, interleaved in blocks of 100 so
// that a loaded machine slows all three alike: with no span in its context,
// with a sampled-out span (NotRecording), and with a span of an SDK tracer
// that samples everything (no processor: the cost of recording, without
// export). prepare returns the operation for a context (for example a
// request carrying it); it is called outside the timed blocks, once per
// block for the recording span, which is new for each block. Bench reports
// the time per operation of each, the ratios sampled-out/untraced and
// traced/untraced (medians over the blocks, so that a burst of load on the
// machine does not skew them), the allocations of a traced operation and,
// for scale, what starting and ending the span itself cost.
func Bench(b *testing.B, prepare func(ctx context.Context) func()) {
	tr := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())).Tracer("spantest")
	bg := context.Background()
	untraced, sampledOut := prepare(bg), prepare(NotRecording(bg))
	var tu, ts, tt, tspan time.Duration
	var rs, rt []float64 // per block: sampled-out/untraced, traced/untraced
	n, spans := 0, 0
	for b.Loop() {
		s0 := time.Now()
		ctx, span := tr.Start(bg, "bench")
		tspan += time.Since(s0)
		traced := prepare(ctx)
		t0 := time.Now()
		for range block {
			untraced()
		}
		t1 := time.Now()
		for range block {
			sampledOut()
		}
		t2 := time.Now()
		for range block {
			traced()
		}
		t3 := time.Now()
		span.End()
		tspan += time.Since(t3)
		tu, ts, tt = tu+t1.Sub(t0), ts+t2.Sub(t1), tt+t3.Sub(t2)
		rs = append(rs, float64(t2.Sub(t1))/float64(t1.Sub(t0)))
		rt = append(rt, float64(t3.Sub(t2))/float64(t1.Sub(t0)))
		n += block
		spans++
	}
	ctx, span := tr.Start(bg, "bench")
	allocs := testing.AllocsPerRun(block-1, prepare(ctx))
	span.End()
	per := func(d time.Duration) float64 { return float64(d) / float64(n) }
	b.ReportMetric(per(tu), "untraced-ns/op")
	b.ReportMetric(per(ts), "sampled-out-ns/op")
	b.ReportMetric(per(tt), "traced-ns/op")
	b.ReportMetric(median(rs), "sampled-out/untraced")
	b.ReportMetric(median(rt), "traced/untraced")
	b.ReportMetric(allocs, "traced-allocs/op")
	b.ReportMetric(float64(tspan)/float64(spans), "span-start+end-ns")
	b.ReportMetric(0, "ns/op") // an op is a block of each; see the metrics
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

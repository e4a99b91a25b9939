package compat_test

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// meter returns a real SDK meter provider and its manual reader.
func meter(t testing.TB) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp, r
}

// decodes reads blastradius.compat.decodes as "decoder|version|result" → value.
func decodes(t testing.TB, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != "github.com/blastradius/blastradius/compat" {
			t.Errorf("unexpected scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			if m.Name != "blastradius.compat.decodes" {
				t.Errorf("unexpected metric %q", m.Name)
				continue
			}
			if m.Unit != "{decode}" {
				t.Errorf("unit = %q", m.Unit)
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic {
				t.Fatalf("decodes is %T, want a monotonic Sum[int64]", m.Data)
			}
			for _, dp := range sum.DataPoints {
				get := func(k string) string {
					v, ok := dp.Attributes.Value(attribute.Key(k))
					if !ok {
						t.Errorf("data point without %s: %v", k, dp.Attributes)
					}
					return v.AsString()
				}
				if n := dp.Attributes.Len(); n != 3 {
					t.Errorf("data point has %d attributes, want 3", n)
				}
				out[get("compat.decoder")+"|"+get("compat.version")+"|"+get("result")] = dp.Value
			}
		}
	}
	return out
}

// clock is an injectable clock that moves only when told to.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.ns.Store(t.UnixNano()); return c }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// lines returns "message attr=value ..." per record, attributes sorted.
func (l *logRecorder) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		var attrs []string
		r.Attrs(func(a slog.Attr) bool {
			attrs = append(attrs, a.Key+"="+a.Value.String())
			return true
		})
		sort.Strings(attrs)
		out = append(out, strings.TrimSpace(r.Level.String()+" "+r.Message+" "+strings.Join(attrs, " ")))
	}
	return out
}

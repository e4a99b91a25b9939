package edge_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// capture is a slog.Handler that keeps every record it is given, with its
// attributes (including those added with WithAttrs) resolved. Groups are
// ignored.
type capture struct {
	mu     sync.Mutex
	recs   []rec
	parent *capture
	pre    []slog.Attr
}

type rec struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (c *capture) root() *capture {
	if c.parent != nil {
		return c.parent
	}
	return c
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	return &capture{parent: c.root(), pre: append(append([]slog.Attr(nil), c.pre...), as...)}
}
func (c *capture) WithGroup(string) slog.Handler { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{}
	for _, a := range c.pre {
		m[a.Key] = a.Value.Resolve().String()
	}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Resolve().String()
		return true
	})
	root := c.root()
	root.mu.Lock()
	root.recs = append(root.recs, rec{r.Level, r.Message, m})
	root.mu.Unlock()
	return nil
}

func (c *capture) all() []rec {
	c = c.root()
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]rec(nil), c.recs...)
}

// count returns the records with message msg whose attribute key equals val
// (any value if key is "").
func (c *capture) count(msg, key, val string) int {
	n := 0
	for _, r := range c.all() {
		if r.msg == msg && (key == "" || r.attrs[key] == val) {
			n++
		}
	}
	return n
}

// metrics is a meter provider backed by a ManualReader.
type metrics struct {
	*sdkmetric.MeterProvider
	reader *sdkmetric.ManualReader
}

func newMetrics(t testing.TB) *metrics {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &metrics{mp, r}
}

// sum returns the value of counter name at the exact attribute set kv
// (key, value pairs), or 0.
func (m *metrics) sum(t testing.TB, name string, kv ...string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var want []attribute.KeyValue
	for i := 0; i+1 < len(kv); i += 2 {
		want = append(want, attribute.String(kv[i], kv[i+1]))
	}
	ws := attribute.NewSet(want...)
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			if md.Name != name {
				continue
			}
			s, ok := md.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, not an int64 sum", name, md.Data)
			}
			for _, dp := range s.DataPoints {
				if dp.Attributes.Equals(&ws) {
					return dp.Value
				}
			}
		}
	}
	return 0
}

// total returns the sum of counter name over all attribute sets.
func (m *metrics) total(t testing.TB, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			if s, ok := md.Data.(metricdata.Sum[int64]); ok && md.Name == name {
				for _, dp := range s.DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}

func contextWithCancel(r *http.Request) (*http.Request, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	return r.WithContext(ctx), cancel
}

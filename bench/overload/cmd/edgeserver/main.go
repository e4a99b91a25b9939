// Command edgeserver is a contender of the overload benchmark: the handler
// of internal/server behind no protection, behind edge.Shed with a static
// cap, or behind edge.Shed with the adaptive limit. The overload command
// starts it; by hand:
//
//	go run ./bench/overload/cmd/edgeserver -contender adaptive -handler slot
//
// It prints "listening ADDR" and serves until its standard input closes.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/blastradius/blastradius/bench/overload/internal/server"
	"github.com/blastradius/blastradius/edge"
)

func main() {
	server.Main("edgeserver", func(fs *flag.FlagSet) func() (func(http.Handler) http.Handler, func() string, error) {
		contender := fs.String("contender", "adaptive", "none, static or adaptive")
		n := fs.Int("cap", 8, "static: the in-flight cap")
		return func() (func(http.Handler) http.Handler, func() string, error) {
			return setup(*contender, *n)
		}
	})
}

// setup returns the contender's middleware and a function that reports
// Shed's gauges.
func setup(contender string, n int) (func(http.Handler) http.Handler, func() string, error) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	// Limit changes go to stderr, which the driver keeps in a file.
	common := []edge.ShedOption{edge.WithMeterProvider(mp), edge.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)))}
	var mw edge.Middleware
	switch contender {
	case "none":
	case "static":
		mw = edge.Shed(append(common, edge.WithMaxInFlight(n))...)
	case "adaptive":
		mw = edge.Shed(append(common, edge.WithAdaptiveLimit())...)
	default:
		return nil, nil, fmt.Errorf("unknown -contender %q (none, static or adaptive)", contender)
	}
	return mw, func() string { return gauges(reader) }, nil
}

// gauges returns Shed's gauges as "name=value" pairs, short names.
func gauges(r *sdkmetric.ManualReader) string {
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			name := strings.TrimPrefix(m.Name, "blastradius.edge.shed.")
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					fmt.Fprintf(&b, "%s=%d ", name, dp.Value)
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					fmt.Fprintf(&b, "%s=%.4g ", name, dp.Value)
				}
			}
		}
	}
	return strings.TrimSpace(b.String())
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/examples/internal/metricsprint"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)

	var attempts atomic.Int64
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := attempts.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		if n%3 == 0 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	tr, err := breaker.NewTransport(nil,
		breaker.WithRetries(2, breaker.WithBackoff(time.Millisecond, 5*time.Millisecond)),
		breaker.WithConsecutiveFailures(5),
		breaker.WithOpenDuration(time.Minute),
		breaker.WithMeterProvider(mp),
		breaker.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}

	phase := func(name string, n int) error {
		before := attempts.Load()
		var ok, failed, open int
		for range n {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/price", nil)
			resp, err := client.Do(req)
			switch {
			case errors.Is(err, breaker.ErrOpen):
				open++
			case err != nil:
				return err
			default:
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok++
				} else {
					failed++
				}
			}
		}
		fmt.Fprintf(out, "%-26s %2d calls: %2d ok, %2d failed, %2d rejected by the open breaker; %2d reached the server\n",
			name, n, ok, failed, open, attempts.Load()-before)
		return nil
	}
	if err := phase("flaky (every 3rd is 503):", 12); err != nil {
		return err
	}
	down.Store(true)
	if err := phase("outage (every call 500):", 20); err != nil {
		return err
	}
	b := tr.Breaker(srv.Listener.Addr().String())
	fmt.Fprintf(out, "breaker %q is %s\n", b.Name(), b.State())
	fmt.Fprintln(out, "-- metrics:")
	return metricsprint.Print(ctx, out, reader, "blastradius.breaker.")
}

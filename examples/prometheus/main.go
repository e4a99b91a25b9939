package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/logbudget"
	"github.com/blastradius/blastradius/rollout"
)

// adminToken authorizes the rollout admin handler. A real service checks
// its own operators' credentials.
const adminToken = "admin"

func main() {
	addr := flag.String("addr", "127.0.0.1:9464", "address to serve the API and /metrics on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err == nil {
		err = run(ctx, ln, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "prometheus:", err)
		os.Exit(1)
	}
}

// run serves the service, its admin handler and /metrics on ln, sends the
// service a little traffic, prints each answer and then a line starting
// with "serving" to out, and serves until ctx is done. Logs go to logs.
func run(ctx context.Context, ln net.Listener, out, logs io.Writer) error {
	// The exporter is a reader of the meter provider: each scrape collects
	// every instrument. A registry of its own keeps the process-wide
	// default registry out of it.
	reg := prom.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())

	// Every component logs through one log budget.
	budget, err := logbudget.New(slog.NewTextHandler(logs, nil), logbudget.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	defer budget.Flush(context.Background())
	logger := slog.New(budget)

	// The dependency: an inventory service on loopback that fails for the
	// item "broken".
	inventory := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("item") == "broken" {
			http.Error(w, "inventory: database unavailable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "7 in stock")
	}))
	defer inventory.Close()

	api, gates, err := newAPI(mp, logger, inventory.URL)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/admin/rollout/", http.StripPrefix("/admin/rollout", rollout.Handler(gates, func(r *http.Request) bool {
		return r.Header.Get("Authorization") == "Bearer "+adminToken
	})))
	mux.Handle("/", api)

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	err = traffic(ctx, base, out)
	if err == nil {
		fmt.Fprintf(out, "serving %s/metrics (kill the new path: curl -X POST -H 'Authorization: Bearer %s' %s/admin/rollout/stock-v2/kill)\n",
			base, adminToken, base)
		<-ctx.Done()
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(shutdown), ignoreClosed(<-served))
}

// ignoreClosed drops the error Serve returns after Shutdown.
func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

type user struct{ Name string }

// verify stands in for a real token verifier.
func verify(_ context.Context, token string) (user, error) {
	switch {
	case token == "alice" || token == "bob":
		return user{token}, nil
	case strings.HasPrefix(token, "legacy:"):
		return user{}, edge.ErrUnsupportedVersion
	}
	return user{}, edge.ErrMalformed
}

// newAPI returns the service's handler, behind the edge chain, and the
// registry of its gates. The new code path of GET /stock asks the inventory
// service at inventoryURL through a breaker; the old path answers from a
// cache.
func newAPI(mp *sdkmetric.MeterProvider, logger *slog.Logger, inventoryURL string) (http.Handler, *rollout.Registry, error) {
	tr, err := breaker.NewTransport(nil,
		breaker.WithKeyFunc(func(*http.Request) string { return "inventory" }),
		breaker.WithConsecutiveFailures(5),
		breaker.WithOpenDuration(time.Minute),
		breaker.WithMeterProvider(mp), breaker.WithLogger(logger))
	if err != nil {
		return nil, nil, err
	}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}

	gates, err := rollout.NewRegistry(rollout.WithMeterProvider(mp), rollout.WithLogger(logger))
	if err != nil {
		return nil, nil, err
	}
	gate, err := rollout.New("stock-v2", rollout.WithPercent(100), rollout.WithMeterProvider(mp), rollout.WithLogger(logger))
	if err != nil {
		return nil, nil, err
	}
	if err := gates.Register(gate); err != nil {
		return nil, nil, err
	}
	stock, err := rollout.NewPath(gate, rollout.Arms[string, string]{
		Old: func(_ context.Context, item string) (string, error) { return "in stock (cached)", nil },
		New: func(ctx context.Context, item string) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, inventoryURL+"/?"+url.Values{"item": {item}}.Encode(), nil)
			if err != nil {
				return "", err
			}
			resp, err := client.Do(req)
			if err != nil {
				return "", err // breaker.ErrOpen once the inventory failed 5 times in a row
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("inventory: %s", resp.Status)
			}
			return string(body), err
		},
		Fallback: true, // a failure of the new path is answered by the old one
	})
	if err != nil {
		return nil, nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /stock", func(w http.ResponseWriter, r *http.Request) {
		item := r.URL.Query().Get("item")
		if item == "" {
			panic("stock: no item") // a handler bug: edge.Recover answers 500
		}
		key := "anonymous"
		if u, ok := edge.PrincipalFrom[user](r.Context()); ok {
			key = u.Name
		}
		answer, err := stock.Run(r.Context(), key, item)
		if err != nil {
			http.Error(w, "stock unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%s: %s", item, answer)
	})
	meters, logs := edge.WithMeterProvider(mp), edge.WithLogger(logger)
	h := edge.Chain(
		edge.Recover(meters, logs),
		edge.Shed(meters, logs, edge.WithAdaptiveLimit(), edge.WithRate(20, 20)),
		edge.Auth(verify, meters, logs),
	)(mux)
	return h, gates, nil
}

// traffic sends the service at base a few requests and prints each answer:
// valid and bad tokens, an item the inventory fails on until the breaker
// opens, a handler panic, and a burst until the rate limit answers 429.
func traffic(ctx context.Context, base string, out io.Writer) error {
	get := func(path, token string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if token == "" {
			token = "(no token)"
		}
		fmt.Fprintf(out, "GET %-20s %-12s -> %d %s\n", path, token, resp.StatusCode, strings.TrimSpace(string(body)))
		return resp.StatusCode, err
	}
	for _, c := range []struct{ path, token string }{
		{"/stock?item=apple", "alice"},
		{"/stock?item=apple", "bob"},
		{"/stock?item=pear", "alice"},
		{"/stock?item=apple", "legacy:carol"},
		{"/stock?item=apple", ""},
	} {
		if _, err := get(c.path, c.token); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "-- the inventory fails on one item: five failures open the breaker, the old path answers")
	for range 6 {
		if _, err := get("/stock?item=broken", "alice"); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "-- a handler bug, then a burst until the rate limit answers:")
	if _, err := get("/stock", "alice"); err != nil {
		return err
	}
	for range 1000 {
		code, err := get("/stock?item=apple", "%%garbage")
		if err != nil || code == http.StatusTooManyRequests {
			return err
		}
	}
	return errors.New("prometheus: 1000 requests and no 429 from the rate limit")
}

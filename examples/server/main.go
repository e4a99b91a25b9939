package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/examples/internal/metricsprint"
	"github.com/blastradius/blastradius/logbudget"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

type user struct{ Name string }

// verify stands in for a real token verifier: it signals why a token failed
// through edge's sentinel errors, and one token makes it panic.
func verify(_ context.Context, token string) (user, error) {
	switch {
	case token == "alice-v2":
		return user{"alice"}, nil
	case strings.HasPrefix(token, "legacy:"):
		return user{}, edge.ErrUnsupportedVersion
	case token == "boom":
		panic("verifier bug")
	}
	return user{}, edge.ErrMalformed
}

func run(ctx context.Context, out io.Writer) error {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	// One log budget for every middleware: at most one record per message
	// and reason per minute here (the default is 10), then one summary. A
	// real service logs to its own handler, not io.Discard.
	budget, err := logbudget.New(slog.NewTextHandler(io.Discard, nil),
		logbudget.WithLimit(1), logbudget.WithKeyAttr("reason"), logbudget.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	defer budget.Flush(ctx)
	meters, logs := edge.WithMeterProvider(mp), edge.WithLogger(slog.New(budget))

	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		if u, ok := edge.PrincipalFrom[user](r.Context()); ok {
			fmt.Fprintf(w, "hello %s", u.Name)
			return
		}
		res, _ := edge.AuthResultFrom(r.Context())
		fmt.Fprintf(w, "hello anonymous (%s)", res.Reason)
	})
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("handler bug") })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })

	h := edge.Chain(
		edge.Recover(meters, logs),
		edge.Shed(meters, logs,
			edge.WithAdaptiveLimit(), // the limit on requests in flight, found from measured latency
			edge.WithRate(1, 5),      // a burst of 5, then 1 request per second
			edge.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }),
		),
		edge.Auth(verify, meters, logs),
	)(mux)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Shutdown(ctx)
	base := "http://" + ln.Addr().String()

	get := func(path, token string) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		extra := ""
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			extra = " Retry-After=" + ra
		}
		fmt.Fprintf(out, "%-8s %-14s -> %d %s%s\n", path, label(token), resp.StatusCode, strings.TrimSpace(string(body)), extra)
		return nil
	}
	for _, c := range []struct{ path, token string }{
		{"/hello", "alice-v2"},
		{"/hello", "legacy:bob"},
		{"/hello", "%%garbage"},
		{"/hello", "boom"},
		{"/panic", "alice-v2"},
	} {
		if err := get(c.path, c.token); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "-- a burst over the rate limit, then a health check:")
	for range 3 {
		if err := get("/hello", ""); err != nil {
			return err
		}
	}
	if err := get("/healthz", ""); err != nil {
		return err
	}
	fmt.Fprintln(out, "-- metrics:")
	return errors.Join(
		metricsprint.Print(ctx, out, reader, "blastradius.edge."),
		metricsprint.Print(ctx, out, reader, "blastradius.logbudget."))
}

func label(token string) string {
	if token == "" {
		return "(no token)"
	}
	return token
}

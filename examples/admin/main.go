package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/blastradius/blastradius/examples/internal/metricsprint"
	"github.com/blastradius/blastradius/rollout"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "admin:", err)
		os.Exit(1)
	}
}

const operator = "Bearer s3cret-operator-token"

func run(ctx context.Context, out io.Writer) error {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	metrics := rollout.WithMeterProvider(mp)
	quiet := rollout.WithLogger(slog.New(slog.DiscardHandler))

	reg, err := rollout.NewRegistry(metrics, quiet)
	if err != nil {
		return err
	}
	if err := reg.Retire("power-peg", "repurposing forbidden (Knight Capital, 2012)"); err != nil {
		return err
	}
	for _, name := range []string{"checkout-v2", "search-v3"} {
		g, err := rollout.New(name, metrics, quiet, rollout.WithOwner("payments"),
			rollout.WithExpiry(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)))
		if err != nil {
			return err
		}
		if err := reg.Register(g); err != nil {
			return err
		}
	}
	info, err := reg.LoadConfig(strings.NewReader(`{"version":"1","gates":[{"name":"checkout-v2","percent":5},{"name":"search-v3","percent":50}]}`))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "config %s applied, %s\n", info.Version, info.Hash[:19])
	_, err = reg.LoadConfig(strings.NewReader(`{"version":"2","gates":[{"name":"power-peg","percent":100}]}`))
	fmt.Fprintf(out, "config 2 rejected: %v; still on config %s\n", err, reg.Config().Version)

	mux := http.NewServeMux()
	mux.Handle("/admin/rollout/", http.StripPrefix("/admin/rollout", rollout.Handler(reg, func(r *http.Request) bool {
		return r.Header.Get("Authorization") == operator
	})))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Shutdown(ctx)
	base := "http://" + ln.Addr().String() + "/admin/rollout"

	call := func(method, path, auth, body string) error {
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		fmt.Fprintf(out, "%-4s %-26s -> %d\n", method, path, resp.StatusCode)
		return nil
	}
	for _, c := range []struct{ method, path, auth, body string }{
		{"GET", "/", "", ""}, // no credentials
		{"POST", "/checkout-v2/kill", operator, `{"reason":"INC-42: payment errors"}`},
		{"POST", "/search-v3/percent", operator, `{"percent":75}`},
		{"POST", "/smars/kill", operator, ``},                       // unknown gate
		{"POST", "/search-v3/percent", operator, `{"percent":250}`}, // out of range
		{"GET", "/checkout-v2/kill", operator, ``},                  // wrong method
	} {
		if err := call(c.method, c.path, c.auth, c.body); err != nil {
			return err
		}
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	req.Header.Set("Authorization", operator)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var list struct {
		Gates []rollout.Status `json:"gates"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return err
	}
	fmt.Fprintln(out, "-- gates:")
	for _, s := range list.Gates {
		fmt.Fprintf(out, "%-12s percent=%-4v killed=%-5v reason=%q\n", s.Name, s.Percent, s.Killed, s.Reason)
	}
	fmt.Fprintln(out, "-- metrics:")
	return metricsprint.Print(ctx, out, reader, "blastradius.rollout.")
}

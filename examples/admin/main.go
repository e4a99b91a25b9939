package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/blastradius/blastradius/console"
	"github.com/blastradius/blastradius/examples/internal/metricsprint"
	"github.com/blastradius/blastradius/rollout"
)

func main() {
	serve := flag.String("serve", "", "after the demo, serve the console and the admin API on this address (such as 127.0.0.1:8080) until interrupted")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "admin:", err)
		os.Exit(1)
	}
}

const (
	password = "s3cret-operator-token"
	operator = "Bearer " + password
)

// authorize lets the operator in: a script with the bearer token, a browser
// with basic auth (user operator, the same secret).
func authorize(r *http.Request) bool {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(operator)) == 1 {
		return true
	}
	user, pass, ok := r.BasicAuth()
	return ok && user == "operator" && subtle.ConstantTimeCompare([]byte(pass), []byte(password)) == 1
}

// askForPassword answers a request without credentials 401 with a basic
// auth challenge, so that a browser asks for the password.
func askForPassword(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="blastradius console", charset="UTF-8"`)
			http.Error(w, "credentials needed", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// run runs the demo on a loopback port and returns; with addr, it serves
// on addr and, after the demo, keeps serving until ctx is done.
func run(ctx context.Context, out io.Writer, addr string) error {
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
	mux.Handle("/admin/rollout/", http.StripPrefix("/admin/rollout", rollout.Handler(reg, authorize)))
	mux.Handle("/admin/console/", askForPassword(http.StripPrefix("/admin/console", console.Handler(reg, authorize,
		console.WithLogger(slog.New(slog.DiscardHandler))))))
	serve := addr != ""
	if !serve {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Shutdown(context.WithoutCancel(ctx))
	root := "http://" + ln.Addr().String()
	base := root + "/admin/rollout"

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
	if err := consoleDemo(ctx, out, root+"/admin/console/"); err != nil {
		return err
	}
	fmt.Fprintln(out, "-- metrics:")
	if err := metricsprint.Print(ctx, out, reader, "blastradius.rollout."); err != nil {
		return err
	}
	if !serve {
		return nil
	}
	fmt.Fprintf(out, "console: %s (user operator, password %s); interrupt to stop\n", root+"/admin/console/", password)
	<-ctx.Done()
	return nil
}

// consoleDemo is what a browser sends to the console: the page without
// and with credentials, then a forged kill from another site's form.
func consoleDemo(ctx context.Context, out io.Writer, consoleURL string) error {
	fmt.Fprintln(out, "-- console:")
	forged := url.Values{"reason": {"forged"}, "confirm": {"yes"}}.Encode()
	for _, c := range []struct {
		what, method, path, body string
		header                   map[string]string
	}{
		{"page, no credentials", "GET", "", "", nil},
		{"page", "GET", "", "", map[string]string{"Authorization": operator}},
		{"kill from another site", "POST", "gates/search-v3/kill", forged, map[string]string{
			"Authorization": operator, "Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"}},
	} {
		req, _ := http.NewRequestWithContext(ctx, c.method, consoleURL+c.path, strings.NewReader(c.body))
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		line := fmt.Sprintf("%-4s %-22s -> %d", c.method, c.what, resp.StatusCode)
		if x := resp.Header.Get("X-Frame-Options"); x != "" {
			line += ", X-Frame-Options: " + x
		}
		fmt.Fprintln(out, line)
	}
	return nil
}

package edge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/logbudget"
	"golang.org/x/time/rate"
)

// get sends one request to h and prints the status and body.
func get(h http.Handler, authorization string) {
	req := httptest.NewRequest("GET", "/", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Printf("%d %s", rec.Code, rec.Body)
	if v := rec.Header().Get("WWW-Authenticate"); v != "" {
		fmt.Printf("WWW-Authenticate: %s\n", v)
	}
	if v := rec.Header().Get("Retry-After"); v != "" {
		fmt.Printf("Retry-After: %s\n", v)
	}
}

func ExampleAuth() {
	verify := func(_ context.Context, tok string) (string, error) {
		switch {
		case strings.HasPrefix(tok, "v2."):
			return tok[3:], nil
		case strings.HasPrefix(tok, "v1."):
			return "", edge.ErrUnsupportedVersion // an old token still in the wild
		}
		panic("parser bug") // recovered: counted as reason "panic"
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := edge.PrincipalFrom[string](r.Context()); ok {
			fmt.Fprintf(w, "hello %s\n", name)
			return
		}
		res, _ := edge.AuthResultFrom(r.Context())
		fmt.Fprintf(w, "hello anonymous (%s)\n", res.Reason)
	})
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))

	h := edge.Auth(verify, quiet)(hello)
	get(h, "Bearer v2.alice")
	get(h, "Bearer v1.bob")
	get(h, "Bearer ???")
	get(h, "")

	required := edge.Auth(verify, quiet, edge.WithRequired())(hello)
	get(required, "Bearer v1.bob")
	get(required, "")
	// Output:
	// 200 hello alice
	// 200 hello anonymous (unsupported_version)
	// 200 hello anonymous (panic)
	// 200 hello anonymous (missing)
	// 401 WWW-Authenticate: Bearer error="invalid_token"
	// 401 WWW-Authenticate: Bearer
}

func ExampleRecover() {
	h := edge.Recover(edge.WithLogger(slog.New(slog.DiscardHandler)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("nil pointer somewhere")
	}))
	get(h, "")
	// Output:
	// 500 Internal Server Error
}

func ExampleShed() {
	h := edge.Shed(
		edge.WithRate(rate.Every(time.Minute), 2), // 2 at once, then one a minute
		edge.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }),
		edge.WithLogger(slog.New(slog.DiscardHandler)),
	)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	for range 3 {
		get(h, "")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	fmt.Println("healthz", rec.Code)
	// Output:
	// 200 ok
	// 200 ok
	// 429 Retry-After: 60
	// healthz 200
}

// The adaptive limit needs no number: it starts at one request in flight,
// doubles while latency stays low, and settles where requests take about
// 1.5× their no-load latency. Here one slow request holds the only slot a
// new limit has.
func ExampleWithAdaptiveLimit() {
	started, release := make(chan struct{}), make(chan struct{})
	h := edge.Shed(
		edge.WithAdaptiveLimit(edge.WithRetryAfter(2*time.Second)),
		edge.WithLogger(slog.New(slog.DiscardHandler)),
	)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "ok\n")
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/slow", nil))
	}()
	<-started
	get(h, "") // over the limit: shed at once
	close(release)
	<-done
	get(h, "")
	// Output:
	// 503 Retry-After: 2
	// 200 ok
}

func ExampleChain() {
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
	verify := func(_ context.Context, tok string) (string, error) {
		if tok == "good" {
			return "alice", nil
		}
		return "", edge.ErrInvalid
	}
	// Recover is outermost, so it also catches panics in Shed and Auth.
	h := edge.Chain(
		edge.Recover(quiet),
		edge.Shed(edge.WithAdaptiveLimit(), quiet),
		edge.Auth(verify, quiet, edge.WithRequired()),
	)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _ := edge.PrincipalFrom[string](r.Context())
		if name == "alice" && r.URL.Query().Has("crash") {
			panic("bug")
		}
		fmt.Fprintf(w, "hi %s\n", name)
	}))
	get(h, "Bearer good")
	get(h, "Bearer bad")
	req := httptest.NewRequest("GET", "/?crash", nil)
	req.Header.Set("Authorization", "Bearer good")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body)
	// Output:
	// 200 hi alice
	// 401 WWW-Authenticate: Bearer error="invalid_token"
	// 500 Internal Server Error
}

// One log budget for every middleware: at most two records per message and
// reason, then one summary of what it suppressed.
func ExampleWithLogger() {
	text := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "since" {
			return slog.Attr{} // keep the output stable
		}
		return a
	}})
	budget, err := logbudget.New(text, logbudget.WithLimit(2), logbudget.WithKeyAttr("reason"))
	if err != nil {
		panic(err)
	}
	logs := edge.WithLogger(slog.New(budget)) // hand the same logger to every package
	verify := func(_ context.Context, tok string) (string, error) { return "", edge.ErrExpired }
	h := edge.Chain(edge.Recover(logs), edge.Auth(verify, logs))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 5 {
		req := httptest.NewRequest("GET", "/orders", nil)
		req.Header.Set("Authorization", "Bearer old")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	budget.Flush(context.Background()) // on shutdown
	// Output:
	// level=WARN msg="edge: auth failed" reason=expired path=/orders error="edge: expired token"
	// level=WARN msg="edge: auth failed" reason=expired path=/orders error="edge: expired token"
	// level=WARN msg="log budget: records suppressed" message="edge: auth failed" suppressed=3 reason=expired
}

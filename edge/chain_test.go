package edge_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/logtest"
)

func TestChainOrder(t *testing.T) {
	var trace []string
	mw := func(name string) edge.Middleware {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				trace = append(trace, name+">")
				next.ServeHTTP(w, r)
				trace = append(trace, "<"+name)
			})
		}
	}
	tests := []struct {
		mws  []edge.Middleware
		want string
	}{
		{nil, "h"},
		{[]edge.Middleware{mw("a")}, "a> h <a"},
		{[]edge.Middleware{mw("a"), mw("b"), mw("c")}, "a> b> c> h <c <b <a"},
		{[]edge.Middleware{mw("a"), nil, mw("b")}, "a> b> h <b <a"},
	}
	for _, tt := range tests {
		trace = nil
		edge.Chain(tt.mws...)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { trace = append(trace, "h") })).
			ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if got := strings.Join(trace, " "); got != tt.want {
			t.Errorf("trace %q, want %q", got, tt.want)
		}
	}
}

// TestResponseControllerThroughEveryWrapper checks that Flush (and the other
// ResponseController methods, through Unwrap) work behind each middleware
// and behind the full chain.
func TestResponseControllerThroughEveryWrapper(t *testing.T) {
	quiet := edge.WithLogger(slog.New(&logtest.Records{}))
	all := map[string]edge.Middleware{
		"recover": edge.Recover(quiet),
		"auth":    edge.Auth(verifyUser, quiet),
		"shed":    edge.Shed(edge.WithMaxInFlight(4), edge.WithRate(1000, 1000), quiet),
		"chain":   edge.Chain(edge.Recover(quiet), edge.Shed(edge.WithMaxInFlight(4), quiet), edge.Auth(verifyUser, quiet), edge.Recover(quiet)),
	}
	for name, mw := range all {
		t.Run(name, func(t *testing.T) {
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rc := http.NewResponseController(w)
				io.WriteString(w, "one,")
				if err := rc.Flush(); err != nil {
					t.Errorf("Flush: %v", err)
				}
				if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil && r.Header.Get("X-Real") != "" {
					t.Errorf("SetWriteDeadline: %v", err)
				}
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
				io.Copy(w, strings.NewReader("two")) // ReadFrom through the wrappers
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if !rec.Flushed || rec.Body.String() != "one,two" {
				t.Errorf("recorder flushed %v body %q", rec.Flushed, rec.Body)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header.Set("X-Real", "1")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "one,two" || resp.TransferEncoding == nil {
				t.Errorf("server body %q, transfer-encoding %v: want a flushed (chunked) response", body, resp.TransferEncoding)
			}
		})
	}
}

func TestRecoverWriterUnwraps(t *testing.T) {
	rec := httptest.NewRecorder()
	edge.Recover()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok || u.Unwrap() != rec {
			t.Errorf("wrapped writer %T does not unwrap to the original", w)
		}
	})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
}

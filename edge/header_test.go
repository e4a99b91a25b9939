package edge_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/fakeclock"
	"golang.org/x/time/rate"
)

// TestRefusalHeadersOwned: every response owns the header values Shed and
// Auth set. An outer middleware that edits one response's Retry-After or
// WWW-Authenticate in place, after the inner handler has answered, must not
// change what later (or concurrent) responses send. Run with -race: a shared
// []string would also be a data race.
func TestRefusalHeadersOwned(t *testing.T) {
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
	clk := fakeclock.New()
	held := make(chan struct{})
	holding := make(chan struct{})
	concurrency := edge.Shed(edge.WithMaxInFlight(1, edge.WithRetryAfter(7*time.Second)), quiet)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				close(holding)
				<-held
			}
		}))
	var holder sync.WaitGroup
	holder.Go(func() { concurrency.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/hold", nil)) })
	defer holder.Wait()
	defer close(held)
	<-holding
	limited := edge.Shed(edge.WithRate(rate.Every(30*time.Second), 1), edge.WithClock(clk.Now), quiet)(sleeper(0))
	limited.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) // takes the one token

	tests := []struct {
		name       string
		h          http.Handler
		auth       string
		code       int
		key, value string
	}{
		{"Shed rate", limited, "", 429, "Retry-After", "30"},
		{"Shed concurrency", concurrency, "", 503, "Retry-After", "7"},
		{"Auth missing", edge.Auth(verifyUser, edge.WithRequired(), quiet)(sleeper(0)), "", 401, "Www-Authenticate", "Bearer"},
		{"Auth invalid", edge.Auth(verifyUser, edge.WithRequired(), quiet)(sleeper(0)), "Bearer inv.x", 401, "Www-Authenticate", `Bearer error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// tamper edits the value in place once the response is written.
			tamper := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tt.h.ServeHTTP(w, r)
				if v := w.Header()[tt.key]; len(v) > 0 {
					v[0] = "tampered"
				}
			})
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for range 50 {
						req := httptest.NewRequest("GET", "/", nil)
						if tt.auth != "" {
							req.Header.Set("Authorization", tt.auth)
						}
						rec := httptest.NewRecorder()
						tamper.ServeHTTP(rec, req)
						// Result's header is the snapshot taken when the
						// header was written: what this response sent.
						if rec.Code != tt.code {
							t.Errorf("code %d, want %d", rec.Code, tt.code)
							return
						}
						if got := rec.Result().Header.Get(tt.key); got != tt.value {
							t.Errorf("%s: %q, want %q", tt.key, got, tt.value)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

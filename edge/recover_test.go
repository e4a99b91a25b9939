package edge_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/logbudget"
)

func panicky(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "1000")
	w.Header().Set("X-Keep", "yes")
	panic("handler exploded: secret=hunter2")
}

func TestRecoverBeforeResponse(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"plain panic", panicky},
		{"panic with error", func(w http.ResponseWriter, r *http.Request) { panic(errors.New("boom")) }},
		{"panic nil", func(w http.ResponseWriter, r *http.Request) { panic(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrictest.New(t)
			logs := &logtest.Records{}
			h := edge.Recover(edge.WithMeterProvider(m), edge.WithLogger(slog.New(logs)))(tt.handler)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/p", nil))
			if rec.Code != 500 {
				t.Fatalf("code %d, want 500", rec.Code)
			}
			if body := rec.Body.String(); body != "Internal Server Error\n" {
				t.Errorf("body %q, want the generic body", body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || rec.Header().Get("Content-Length") != "" {
				t.Errorf("headers %v: want text/plain and no stale Content-Length", rec.Header())
			}
			if n := m.Total("blastradius.edge.panics"); n != 1 {
				t.Errorf("panics = %d, want 1", n)
			}
			recs := logs.All()
			if len(recs) != 1 || recs[0].Msg != "edge: panic recovered" || recs[0].Level != slog.LevelError {
				t.Fatalf("logs %+v, want one Error record", recs)
			}
			if st := recs[0].Attrs["stack"]; !strings.Contains(st, "recover_test.go") || !strings.Contains(st, "panic(") {
				t.Errorf("stack %q does not show the panic site", st)
			}
		})
	}
}

func TestRecoverAfterResponseStarted(t *testing.T) {
	for _, how := range []string{"write", "writeheader", "flush", "readfrom"} {
		t.Run(how, func(t *testing.T) {
			m := metrictest.New(t)
			logs := &logtest.Records{}
			h := edge.Recover(edge.WithMeterProvider(m), edge.WithLogger(slog.New(logs)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch how {
				case "write":
					io.WriteString(w, "partial")
				case "writeheader":
					w.WriteHeader(http.StatusAccepted)
				case "readfrom":
					io.Copy(w, strings.NewReader("partial"))
				case "flush":
					if err := http.NewResponseController(w).Flush(); err != nil {
						t.Error(err)
					}
				}
				panic("late")
			}))
			// Standalone over a ResponseRecorder: nothing more is written and
			// the panic becomes http.ErrAbortHandler.
			rec := httptest.NewRecorder()
			func() {
				defer func() {
					if v := recover(); v != http.ErrAbortHandler {
						t.Errorf("recovered %v, want http.ErrAbortHandler", v)
					}
				}()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			}()
			if rec.Code == 500 || strings.Contains(rec.Body.String(), "Internal Server Error") {
				t.Errorf("wrote after start: %d %q", rec.Code, rec.Body)
			}
			if n := m.Total("blastradius.edge.panics"); n != 1 {
				t.Errorf("panics = %d, want 1", n)
			}
			if n := logs.Count("edge: panic recovered", "response_started", "true"); n != 1 {
				t.Errorf("log records = %d, want 1", n)
			}
		})
	}
}

func TestRecoverAbortsStartedResponseOverHTTP(t *testing.T) {
	var serverLog bytes.Buffer
	srv := httptest.NewUnstartedServer(edge.Recover(edge.WithLogger(slog.New(&logtest.Records{})))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		http.NewResponseController(w).Flush()
		panic("late")
	})))
	srv.Config.ErrorLog = log.New(&serverLog, "", 0)
	srv.Start()
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "partial" || err == nil {
		t.Fatalf("status %d body %q err %v: want 200, the partial body and a read error (aborted)", resp.StatusCode, body, err)
	}
	srv.Close()
	if serverLog.Len() != 0 {
		t.Errorf("server logged %q, want nothing (ErrAbortHandler)", serverLog.String())
	}
}

func TestRecoverRepanicsErrAbortHandler(t *testing.T) {
	for _, v := range []any{http.ErrAbortHandler, fmt.Errorf("wrapped: %w", http.ErrAbortHandler)} {
		m := metrictest.New(t)
		logs := &logtest.Records{}
		h := edge.Recover(edge.WithMeterProvider(m), edge.WithLogger(slog.New(logs)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic(v)
		}))
		rec := httptest.NewRecorder()
		func() {
			defer func() {
				if got := recover(); got != v {
					t.Errorf("recovered %v, want %v", got, v)
				}
			}()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		}()
		if rec.Code != 200 || rec.Body.Len() != 0 {
			t.Errorf("wrote %d %q", rec.Code, rec.Body)
		}
		if n := m.Total("blastradius.edge.panics"); n != 0 || len(logs.All()) != 0 {
			t.Errorf("panics %d, logs %d; want 0, 0", n, len(logs.All()))
		}
	}
}

// TestRecoverLogBudget: a panic storm is counted in full and logged within
// the budget of the logger it is given.
func TestRecoverLogBudget(t *testing.T) {
	logs := &logtest.Records{}
	m := metrictest.New(t)
	b, err := logbudget.New(logs, logbudget.WithLimit(3), logbudget.WithMeterProvider(m))
	if err != nil {
		t.Fatal(err)
	}
	h := edge.Recover(edge.WithLogger(slog.New(b)), edge.WithMeterProvider(m))(http.HandlerFunc(panicky))
	for range 50 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 500 {
			t.Fatalf("code %d", rec.Code)
		}
	}
	if n := logs.Count("edge: panic recovered", "", ""); n != 3 {
		t.Errorf("records = %d, want the budget, 3", n)
	}
	if n := m.Total("blastradius.edge.panics"); n != 50 {
		t.Errorf("panics = %d, want 50", n)
	}
	if n := m.Total("blastradius.logbudget.suppressed"); n != 47 {
		t.Errorf("suppressed = %d, want 47", n)
	}
	b.Flush(t.Context())
	if n := logs.Count(logbudget.SummaryMessage, "suppressed", "47"); n != 1 {
		t.Errorf("summary records with suppressed=47: %d, want 1", n)
	}
}

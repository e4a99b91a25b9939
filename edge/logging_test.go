package edge_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/logbudget"
)

const suppressedMetric = "blastradius.logbudget.suppressed"

// badTokens sends n requests with a token verifyUser rejects as
// unsupported_version, to path.
func badTokens(h http.Handler, n int, path string) {
	for range n {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer v1.old")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// TestSharedLogBudget: a logger whose handler is a *logbudget.Handler is one
// budget for every middleware given it, with the user's settings, and its
// suppressions are counted once, in blastradius.logbudget.suppressed.
func TestSharedLogBudget(t *testing.T) {
	m := metrictest.New(t)
	logs := &logtest.Records{}
	budget, err := logbudget.New(logs, logbudget.WithLimit(20), logbudget.WithKeyAttr("reason"), logbudget.WithMeterProvider(m))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(budget).With("service", "api") // derived loggers share the budget
	a := edge.Auth(verifyUser, edge.WithLogger(logger), edge.WithMeterProvider(m))(sleeper(0))
	b := edge.Auth(verifyUser, edge.WithLogger(logger), edge.WithMeterProvider(m))(sleeper(0))
	badTokens(a, 25, "/a")
	badTokens(b, 5, "/b")
	if n := logs.Count("edge: auth failed", "reason", "unsupported_version"); n != 20 {
		t.Errorf("records = %d, want the shared budget's limit, 20", n)
	}
	if n := logs.Count("edge: auth failed", "service", "api"); n != 20 {
		t.Errorf("records with the logger's attributes = %d, want 20", n)
	}
	if n := m.Total(suppressedMetric); n != 10 {
		t.Errorf("suppressed = %d, want 10", n)
	}
	budget.Flush(t.Context())
	if n := logs.Count(logbudget.SummaryMessage, "suppressed", "10"); n != 1 {
		t.Errorf("summaries with suppressed=10: %d, want 1 (one budget)", n)
	}
}

// TestOwnLogBudget: a logger without a budget gets one of its own per
// middleware, with logbudget's defaults (10 records per message and reason
// per minute), counted in blastradius.logbudget.suppressed on the
// middleware's meter provider.
func TestOwnLogBudget(t *testing.T) {
	m := metrictest.New(t)
	logs := &logtest.Records{}
	opts := []edge.AuthOption{edge.WithLogger(slog.New(logs)), edge.WithMeterProvider(m)}
	a := edge.Auth(verifyUser, opts...)(sleeper(0))
	b := edge.Auth(verifyUser, opts...)(sleeper(0))
	badTokens(a, 25, "/")
	badTokens(b, 25, "/")
	h := edge.Auth(verifyUser, opts...)(sleeper(0))
	for range 25 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) // missing: logged at Debug
	}
	if n := logs.Count("edge: auth failed", "reason", "unsupported_version"); n != 20 {
		t.Errorf("unsupported_version records = %d, want 10 per middleware", n)
	}
	if n := logs.Count("edge: auth failed", "reason", "missing"); n != 10 {
		t.Errorf("missing records = %d, want 10 (a key of its own)", n)
	}
	if n := m.Total(suppressedMetric); n != 45 {
		t.Errorf("suppressed = %d, want 15+15+15", n)
	}
}

// TestLogBudgetKeyedByAnotherAttribute: a shared budget keyed by an
// attribute that edge's records carry (here "path") sees it.
func TestLogBudgetKeyedByAnotherAttribute(t *testing.T) {
	logs := &logtest.Records{}
	budget, err := logbudget.New(logs, logbudget.WithLimit(1), logbudget.WithKeyAttr("path"))
	if err != nil {
		t.Fatal(err)
	}
	h := edge.Auth(verifyUser, edge.WithLogger(slog.New(budget)))(sleeper(0))
	badTokens(h, 3, "/a")
	badTokens(h, 3, "/b")
	if a, b := logs.Count("edge: auth failed", "path", "/a"), logs.Count("edge: auth failed", "path", "/b"); a != 1 || b != 1 {
		t.Errorf("records for /a %d, /b %d; want 1 each", a, b)
	}
}

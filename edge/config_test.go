package edge_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/blastradius/blastradius/edge"
	"go.opentelemetry.io/otel"
)

type errorSink struct {
	mu   sync.Mutex
	errs []error
}

func (s *errorSink) Handle(err error) { s.mu.Lock(); s.errs = append(s.errs, err); s.mu.Unlock() }

// TestInvalidOptions: constructors never fail or panic; each invalid value
// is reported to otel.Handle as ErrInvalidConfig and the default is kept.
func TestInvalidOptions(t *testing.T) {
	sink := &errorSink{}
	otel.SetErrorHandler(sink)
	defer otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))

	quiet := edge.WithLogger(slog.New(discard{}))
	auth := edge.Auth[user](nil, edge.WithHeader("", "x"), edge.WithCookie(""), edge.WithMaxTokenSize(0), edge.WithLogger(nil), edge.WithLogBudget(nil), edge.WithClock(nil), quiet)
	shed := edge.Shed(edge.WithMaxInFlight(-1), edge.WithQueue(0, time.Second), edge.WithRate(0, 1), edge.WithRetryAfter(0), quiet)
	b := edge.NewLogBudget(discard{}, edge.WithLogLimit(0), edge.WithLogInterval(-time.Second))
	if len(sink.errs) != 13 {
		t.Errorf("%d errors reported, want 13: %v", len(sink.errs), sink.errs)
	}
	for _, err := range sink.errs {
		if !errors.Is(err, edge.ErrInvalidConfig) {
			t.Errorf("%v does not wrap ErrInvalidConfig", err)
		}
	}
	// Defaults kept: Authorization Bearer, 8 KiB; a nil verify rejects.
	var res edge.AuthResult
	h := auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { res, _ = edge.AuthResultFrom(r.Context()) }))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer v2.alice")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if res.Reason != edge.ReasonInvalid {
		t.Errorf("nil verify: reason %v, want invalid", res.Reason)
	}
	rec := httptest.NewRecorder()
	shed(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 {
		t.Errorf("shed with no valid limits: %d, want 200", rec.Code)
	}
	_ = b.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "x", 0))
}

// TestLogBudgetDerivedHandlersShareBudget: WithAttrs and WithGroup return
// LogBudgets that share one budget.
func TestLogBudgetDerivedHandlersShareBudget(t *testing.T) {
	logs := &capture{}
	b := edge.NewLogBudget(logs, edge.WithLogLimit(2))
	l := slog.New(b)
	for i := range 6 {
		switch i % 3 {
		case 0:
			l.Info("same")
		case 1:
			l.With("req", i).Info("same")
		case 2:
			l.WithGroup("g").Info("same")
		}
	}
	if _, ok := b.WithAttrs(nil).(*edge.LogBudget); !ok {
		t.Error("WithAttrs does not return a *LogBudget")
	}
	if n := logs.count("same", "", ""); n != 2 {
		t.Errorf("%d records passed, want 2", n)
	}
	b.Flush(context.Background())
	if n := logs.count(edge.SummaryMessage, "suppressed", "4"); n != 1 {
		t.Errorf("summary with suppressed=4: %d, want 1", n)
	}
}

package edge_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/edge"
	"golang.org/x/time/rate"
)

// TestInvalidOptionsPanic: every invalid option makes its constructor panic,
// at construction, with an error wrapping ErrInvalidConfig that names the
// option and its value. A later invalid option does not quietly undo an
// earlier valid one.
func TestInvalidOptionsPanic(t *testing.T) {
	quiet := edge.WithLogger(slog.New(discard{}))
	tests := []struct {
		name  string
		build func()
		want  string // in the panic message
	}{
		{"nil verify", func() { edge.Auth[user](nil, quiet) }, "Auth(nil)"},
		{"empty header", func() { edge.Auth(verifyUser, edge.WithHeader("", "x"), quiet) }, `WithHeader("", "x")`},
		{"empty cookie", func() { edge.Auth(verifyUser, edge.WithCookie(""), quiet) }, `WithCookie("")`},
		{"zero token size", func() { edge.Auth(verifyUser, edge.WithMaxTokenSize(0), quiet) }, "WithMaxTokenSize(0)"},
		{"negative token size", func() { edge.Auth(verifyUser, edge.WithMaxTokenSize(-1), quiet) }, "WithMaxTokenSize(-1)"},
		{"nil logger (Auth)", func() { edge.Auth(verifyUser, edge.WithLogger(nil)) }, "WithLogger(nil)"},
		{"nil logger (Recover)", func() { edge.Recover(edge.WithLogger(nil)) }, "WithLogger(nil)"},
		{"nil logger (Shed)", func() { edge.Shed(edge.WithLogger(nil)) }, "WithLogger(nil)"},
		{"nil log budget", func() { edge.Recover(edge.WithLogBudget(nil)) }, "WithLogBudget(nil)"},
		{"nil clock (Shed)", func() { edge.Shed(edge.WithClock(nil), quiet) }, "WithClock(nil)"},
		{"nil clock (NewLogBudget)", func() { edge.NewLogBudget(discard{}, edge.WithClock(nil)) }, "WithClock(nil)"},
		{"zero in flight", func() { edge.Shed(edge.WithMaxInFlight(0), quiet) }, "WithMaxInFlight(0)"},
		{"negative in flight", func() { edge.Shed(edge.WithMaxInFlight(-1), quiet) }, "WithMaxInFlight(-1)"},
		{"zero queue depth", func() { edge.Shed(edge.WithQueue(0, time.Second), quiet) }, "WithQueue(0, 1s)"},
		{"zero queue wait", func() { edge.Shed(edge.WithQueue(1, 0), quiet) }, "WithQueue(1, 0s)"},
		{"zero rate", func() { edge.Shed(edge.WithRate(0, 1), quiet) }, "WithRate(0, 1)"},
		{"negative rate", func() { edge.Shed(edge.WithRate(-1, 1), quiet) }, "WithRate(-1, 1)"},
		{"NaN rate", func() { edge.Shed(edge.WithRate(rate.Limit(math.NaN()), 1), quiet) }, "WithRate(NaN, 1)"},
		{"-Inf rate", func() { edge.Shed(edge.WithRate(rate.Limit(math.Inf(-1)), 1), quiet) }, "WithRate(-Inf, 1)"},
		{"zero burst", func() { edge.Shed(edge.WithRate(1, 0), quiet) }, "WithRate(1, 0)"},
		{"zero burst with rate.Inf", func() { edge.Shed(edge.WithRate(rate.Inf, 0), quiet) }, ", 0)"},
		{"NaN after a valid rate", func() { edge.Shed(edge.WithRate(1, 1), edge.WithRate(rate.Limit(math.NaN()), 1), quiet) }, "WithRate(NaN, 1)"},
		{"zero retry after", func() { edge.Shed(edge.WithRetryAfter(0), quiet) }, "WithRetryAfter(0s)"},
		{"negative retry after", func() { edge.Shed(edge.WithRetryAfter(-time.Second), quiet) }, "WithRetryAfter(-1s)"},
		{"zero log limit", func() { edge.NewLogBudget(discard{}, edge.WithLogLimit(0)) }, "log limit 0"},
		{"negative log interval", func() { edge.NewLogBudget(discard{}, edge.WithLogInterval(-time.Second)) }, "log interval -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				err, ok := v.(error)
				if !ok || !errors.Is(err, edge.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("panic %#v; want an error wrapping ErrInvalidConfig that contains %q", v, tt.want)
				}
			}()
			tt.build()
		})
	}
}

// TestRateInf: rate.Inf (or +Inf) is a valid rate that means no rate limit,
// as in x/time/rate, and replaces an earlier WithRate.
func TestRateInf(t *testing.T) {
	for _, limit := range []rate.Limit{rate.Inf, rate.Limit(math.Inf(1))} {
		h := edge.Shed(edge.WithRate(1, 1), edge.WithRate(limit, 1), edge.WithLogger(slog.New(discard{})))(sleeper(0))
		if c := codes(burst(h, 50, "/")); c[200] != 50 {
			t.Errorf("WithRate(%v, 1): codes %v, want 50×200", float64(limit), c)
		}
	}
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

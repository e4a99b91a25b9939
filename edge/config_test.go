package edge_test

import (
	"errors"
	"log/slog"
	"math"
	"net/http/httptest"
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
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
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
		h := edge.Shed(edge.WithRate(1, 1), edge.WithRate(limit, 1), edge.WithLogger(slog.New(slog.DiscardHandler)))(sleeper(0))
		if c := codes(burst(h, 50, "/")); c[200] != 50 {
			t.Errorf("WithRate(%v, 1): codes %v, want 50×200", float64(limit), c)
		}
	}
}

// TestNilMeansDefault: a nil logger, clock or meter provider is the
// default (slog.Default(), time.Now, the otel global provider), and a nil
// option is skipped; neither panics.
func TestNilMeansDefault(t *testing.T) {
	tests := []struct {
		name  string
		build func() edge.Middleware
	}{
		{"Auth", func() edge.Middleware {
			return edge.Auth(verifyUser, edge.WithLogger(nil), edge.WithMeterProvider(nil), nil)
		}},
		{"Recover", func() edge.Middleware {
			return edge.Recover(edge.WithLogger(nil), edge.WithMeterProvider(nil), nil)
		}},
		{"Shed", func() edge.Middleware {
			return edge.Shed(edge.WithRate(1, 1), edge.WithClock(nil), edge.WithLogger(nil), edge.WithMeterProvider(nil), nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if v := recover(); v != nil {
					t.Fatalf("panicked: %v", v)
				}
			}()
			h := tt.build()(sleeper(0))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != 200 {
				t.Errorf("code %d, want 200", rec.Code)
			}
		})
	}
}

// TestNilLoggerIsDefault: WithLogger(nil) logs to slog.Default() (through a
// budget), also after an earlier WithLogger.
func TestNilLoggerIsDefault(t *testing.T) {
	logs := &capture{}
	prev := slog.Default()
	slog.SetDefault(slog.New(logs))
	defer slog.SetDefault(prev)
	h := edge.Auth(verifyUser, edge.WithLogger(slog.New(slog.DiscardHandler)), edge.WithLogger(nil))(sleeper(0))
	badTokens(h, 1, "/")
	if n := logs.count("edge: auth failed", "reason", "unsupported_version"); n != 1 {
		t.Errorf("records in slog.Default() = %d, want 1", n)
	}
}

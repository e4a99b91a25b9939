package edge_test

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"math"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/logtest"
	"golang.org/x/time/rate"
)

// TestInvalidOptionsPanic: every invalid option makes its constructor panic,
// at construction, with an error wrapping ErrInvalidConfig that names the
// option and its value. A later invalid option does not quietly undo an
// earlier valid one. Every option constructor of the package is listed,
// either with its invalid values or as having none.
func TestInvalidOptionsPanic(t *testing.T) {
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
	inFlight := func(o edge.InFlightOption) { edge.Shed(edge.WithMaxInFlight(1, o), quiet) }
	adaptive := func(o edge.AdaptiveOption) { edge.Shed(edge.WithAdaptiveLimit(o), quiet) }
	tests := []struct {
		option string // the option constructor under test
		build  func()
		want   string // in the panic message
	}{
		{"Auth", func() { edge.Auth[user](nil, quiet) }, "Auth(nil)"},
		{"WithHeader", func() { edge.Auth(verifyUser, edge.WithHeader("", "x"), quiet) }, `WithHeader("", "x")`},
		{"WithHeader", func() { edge.Auth(verifyUser, edge.WithHeader("X Token", ""), quiet) }, `WithHeader("X Token", "")`},
		{"WithHeader", func() { edge.Auth(verifyUser, edge.WithHeader("X-Token:", ""), quiet) }, `WithHeader("X-Token:", "")`},
		{"WithHeader", func() { edge.Auth(verifyUser, edge.WithHeader("Authorization", "Bearer x"), quiet) }, `WithHeader("Authorization", "Bearer x")`},
		{"WithHeader", func() { edge.Auth(verifyUser, edge.WithHeader("Authorization", "Bearer\r\nX: y"), quiet) }, `"Bearer\r\nX: y"`},
		{"WithCookie", func() { edge.Auth(verifyUser, edge.WithCookie(""), quiet) }, `WithCookie("")`},
		{"WithCookie", func() { edge.Auth(verifyUser, edge.WithCookie("a=b"), quiet) }, `WithCookie("a=b")`},
		{"WithCookie", func() { edge.Auth(verifyUser, edge.WithCookie("s;id"), quiet) }, `WithCookie("s;id")`},
		{"WithCookie", func() { edge.Auth(verifyUser, edge.WithCookie("séance"), quiet) }, `WithCookie("séance")`},
		{"WithMaxTokenSize", func() { edge.Auth(verifyUser, edge.WithMaxTokenSize(0), quiet) }, "WithMaxTokenSize(0)"},
		{"WithMaxTokenSize", func() { edge.Auth(verifyUser, edge.WithMaxTokenSize(-1), quiet) }, "WithMaxTokenSize(-1)"},
		{"WithMaxInFlight", func() { edge.Shed(edge.WithMaxInFlight(0), quiet) }, "WithMaxInFlight(0)"},
		{"WithMaxInFlight", func() { edge.Shed(edge.WithMaxInFlight(-1), quiet) }, "WithMaxInFlight(-1)"},
		{"WithQueue", func() { inFlight(edge.WithQueue(0, time.Second)) }, "WithQueue(0, 1s)"},
		{"WithQueue", func() { inFlight(edge.WithQueue(1, 0)) }, "WithQueue(1, 0s)"},
		{"WithQueue", func() { inFlight(edge.WithQueue(-1, -time.Second)) }, "WithQueue(-1, -1s)"},
		{"WithRetryAfter", func() { inFlight(edge.WithRetryAfter(0)) }, "WithRetryAfter(0s)"},
		{"WithRetryAfter", func() { inFlight(edge.WithRetryAfter(-time.Second)) }, "WithRetryAfter(-1s)"},
		{"WithQueue", func() { adaptive(edge.WithQueue(0, time.Second)) }, "WithQueue(0, 1s)"},
		{"WithRetryAfter", func() { adaptive(edge.WithRetryAfter(0)) }, "WithRetryAfter(0s)"},
		{"WithAdaptiveLimit", func() { edge.Shed(edge.WithMaxInFlight(8), edge.WithAdaptiveLimit(), quiet) }, "WithAdaptiveLimit after WithMaxInFlight(8)"},
		{"WithAdaptiveLimit", func() { edge.Shed(edge.WithAdaptiveLimit(), edge.WithMaxInFlight(8), quiet) }, "WithMaxInFlight(8) after WithAdaptiveLimit"},
		{"WithLimitBounds", func() { adaptive(edge.WithLimitBounds(0, 10)) }, "WithLimitBounds(0, 10)"},
		{"WithLimitBounds", func() { adaptive(edge.WithLimitBounds(-1, -1)) }, "WithLimitBounds(-1, -1)"},
		{"WithLimitBounds", func() { adaptive(edge.WithLimitBounds(5, 4)) }, "WithLimitBounds(5, 4)"},
		{"WithLimitBounds", func() { adaptive(edge.WithLimitBounds(1, 1<<16+1)) }, "WithLimitBounds(1, 65537)"},
		{"WithLatencyTolerance", func() { adaptive(edge.WithLatencyTolerance(1)) }, "WithLatencyTolerance(1)"},
		{"WithLatencyTolerance", func() { adaptive(edge.WithLatencyTolerance(0.5)) }, "WithLatencyTolerance(0.5)"},
		{"WithLatencyTolerance", func() { adaptive(edge.WithLatencyTolerance(-2)) }, "WithLatencyTolerance(-2)"},
		{"WithLatencyTolerance", func() { adaptive(edge.WithLatencyTolerance(math.NaN())) }, "WithLatencyTolerance(NaN)"},
		{"WithLatencyTolerance", func() { adaptive(edge.WithLatencyTolerance(math.Inf(1))) }, "WithLatencyTolerance(+Inf)"},
		{"WithLatencyTolerance", func() {
			edge.Shed(edge.WithAdaptiveLimit(edge.WithLatencyTolerance(2), edge.WithLatencyTolerance(math.NaN())), quiet)
		}, "WithLatencyTolerance(NaN)"},
		{"WithRate", func() { edge.Shed(edge.WithRate(0, 1), quiet) }, "WithRate(0, 1)"},
		{"WithRate", func() { edge.Shed(edge.WithRate(-1, 1), quiet) }, "WithRate(-1, 1)"},
		{"WithRate", func() { edge.Shed(edge.WithRate(rate.Limit(math.NaN()), 1), quiet) }, "WithRate(NaN, 1)"},
		{"WithRate", func() { edge.Shed(edge.WithRate(rate.Limit(math.Inf(-1)), 1), quiet) }, "WithRate(-Inf, 1)"},
		{"WithRate", func() { edge.Shed(edge.WithRate(1, 0), quiet) }, "WithRate(1, 0)"},
		{"WithRate", func() { edge.Shed(edge.WithRate(1, -1), quiet) }, "WithRate(1, -1)"},
		{"WithRate", func() { edge.Shed(edge.WithRate(rate.Inf, 0), quiet) }, ", 0)"},
		{"WithRate", func() { edge.Shed(edge.WithRate(1, 1), edge.WithRate(rate.Limit(math.NaN()), 1), quiet) }, "WithRate(NaN, 1)"},
	}
	// The options with no invalid value: nil means the default
	// (TestNilMeansDefault), and the rest take any value.
	noInvalidValue := []string{"WithLogger", "WithMeterProvider", "WithClock", "WithRequired", "WithObserver", "WithBypass"}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.option] = true
		t.Run(tt.option+"/"+tt.want, func(t *testing.T) {
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
	for _, name := range noInvalidValue {
		covered[name] = true
	}
	for _, name := range optionConstructors(t) {
		if !covered[name] {
			t.Errorf("option %s has no row: list its invalid values, or add it to noInvalidValue", name)
		}
	}
}

// optionConstructors returns the names of the package's exported functions
// that return an option.
func optionConstructors(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !fd.Name.IsExported() || fd.Type.Results == nil || len(fd.Type.Results.List) != 1 {
				continue
			}
			if id, ok := fd.Type.Results.List[0].Type.(*ast.Ident); ok && strings.HasSuffix(id.Name, "Option") {
				names = append(names, fd.Name.Name)
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("no option constructors found")
	}
	return names
}

// TestOptionScopes: an option compiles only where it means something.
// Passing an option to a constructor compiles if and only if the option's
// static type implements the constructor's option interface, which this
// checks for every option constructor against every option type. The shared
// options, and only they, are accepted by Auth, Recover and Shed alike.
func TestOptionScopes(t *testing.T) {
	auth := reflect.TypeFor[edge.AuthOption]()
	recov := reflect.TypeFor[edge.RecoverOption]()
	shed := reflect.TypeFor[edge.ShedOption]()
	inFlight := reflect.TypeFor[edge.InFlightOption]()
	adaptive := reflect.TypeFor[edge.AdaptiveOption]()
	all := []reflect.Type{auth, recov, shed, inFlight, adaptive}
	tests := map[string]struct {
		fn       any
		accepted []reflect.Type
	}{
		"WithLogger":           {edge.WithLogger, []reflect.Type{auth, recov, shed}},
		"WithMeterProvider":    {edge.WithMeterProvider, []reflect.Type{auth, recov, shed}},
		"WithHeader":           {edge.WithHeader, []reflect.Type{auth}},
		"WithCookie":           {edge.WithCookie, []reflect.Type{auth}},
		"WithMaxTokenSize":     {edge.WithMaxTokenSize, []reflect.Type{auth}},
		"WithRequired":         {edge.WithRequired, []reflect.Type{auth}},
		"WithObserver":         {edge.WithObserver, []reflect.Type{auth}},
		"WithMaxInFlight":      {edge.WithMaxInFlight, []reflect.Type{shed}},
		"WithRate":             {edge.WithRate, []reflect.Type{shed}},
		"WithClock":            {edge.WithClock, []reflect.Type{shed}},
		"WithBypass":           {edge.WithBypass, []reflect.Type{shed}},
		"WithAdaptiveLimit":    {edge.WithAdaptiveLimit, []reflect.Type{shed}},
		"WithQueue":            {edge.WithQueue, []reflect.Type{inFlight, adaptive}},
		"WithRetryAfter":       {edge.WithRetryAfter, []reflect.Type{inFlight, adaptive}},
		"WithLimitBounds":      {edge.WithLimitBounds, []reflect.Type{adaptive}},
		"WithLatencyTolerance": {edge.WithLatencyTolerance, []reflect.Type{adaptive}},
	}
	for _, name := range optionConstructors(t) {
		tt, ok := tests[name]
		if !ok {
			t.Errorf("option %s: say which constructors accept it", name)
			continue
		}
		got := reflect.TypeOf(tt.fn).Out(0)
		for _, opt := range all {
			if want := slices.Contains(tt.accepted, opt); got.Implements(opt) != want {
				t.Errorf("%s returns %v: assignable to %v is %v, want %v", name, got, opt, !want, want)
			}
		}
	}
	// Only the shared options are accepted by all three middlewares.
	for name, tt := range tests {
		got := reflect.TypeOf(tt.fn).Out(0)
		shared := got.Implements(auth) && got.Implements(recov) && got.Implements(shed)
		if isShared := got == reflect.TypeFor[edge.Option](); shared != isShared {
			t.Errorf("%s: accepted by every middleware %v, but its type is %v", name, shared, got)
		}
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
	logs := &logtest.Records{}
	prev := slog.Default()
	slog.SetDefault(slog.New(logs))
	defer slog.SetDefault(prev)
	h := edge.Auth(verifyUser, edge.WithLogger(slog.New(slog.DiscardHandler)), edge.WithLogger(nil))(sleeper(0))
	badTokens(h, 1, "/")
	if n := logs.Count("edge: auth failed", "reason", "unsupported_version"); n != 1 {
		t.Errorf("records in slog.Default() = %d, want 1", n)
	}
}

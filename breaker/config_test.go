package breaker_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/blastradius/blastradius/breaker"
)

// constructions returns every way to build something with opt, by the
// option interfaces it implements: an Option goes to New and NewTransport,
// a TransportOption to NewTransport, a RetryOption into WithRetries and a
// BudgetOption also to NewBudget, a ThrottleOption into
// WithAdaptiveThrottle.
func constructions(opt any) map[string]func() (any, error) {
	out := map[string]func() (any, error){}
	add := func(name string, f func() (any, error)) { out[name] = f }
	transport := func(o breaker.TransportOption) func() (any, error) {
		return func() (any, error) { return breaker.NewTransport(nil, o) }
	}
	breakerWith := func(o breaker.Option) func() (any, error) {
		return func() (any, error) { return breaker.New("x", o) }
	}
	switch o := opt.(type) {
	case breaker.Option:
		add("New", breakerWith(o))
		add("NewTransport", transport(o))
	case breaker.TransportOption:
		add("NewTransport", transport(o))
	case breaker.BudgetOption:
		add("NewBudget", func() (any, error) { return breaker.NewBudget(o) })
		add("New/WithRetries", breakerWith(breaker.WithRetries(1, o)))
		add("NewTransport/WithRetries", transport(breaker.WithRetries(1, o)))
	case breaker.RetryOption:
		add("New/WithRetries", breakerWith(breaker.WithRetries(1, o)))
		add("NewTransport/WithRetries", transport(breaker.WithRetries(1, o)))
	case breaker.ThrottleOption:
		add("New/WithAdaptiveThrottle", breakerWith(breaker.WithAdaptiveThrottle(2, o)))
		add("NewTransport/WithAdaptiveThrottle", transport(breaker.WithAdaptiveThrottle(2, o)))
	}
	return out
}

// TestInvalidOptions: every option of every constructor, nested or not,
// fails at construction with an error wrapping ErrInvalidConfig that names
// the option and its value; every float option refuses NaN and ±Inf.
func TestInvalidOptions(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	shared, err := breaker.NewBudget()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		opt  any
		want string // the message after "breaker: invalid config: "
	}{
		{breaker.WithConsecutiveFailures(0), "WithConsecutiveFailures(0): must be in [1, 2^32)"},
		{breaker.WithConsecutiveFailures(math.MaxUint32 + 1), "WithConsecutiveFailures(4294967296): must be in [1, 2^32)"},
		{breaker.WithFailureRatio(0, 10, time.Second, 0), "WithFailureRatio(0, 10, 1s, 0s): ratio must be in (0, 1]"},
		{breaker.WithFailureRatio(1.5, 10, time.Second, 0), "WithFailureRatio(1.5, 10, 1s, 0s): ratio must be in (0, 1]"},
		{breaker.WithFailureRatio(nan, 10, time.Second, 0), "WithFailureRatio(NaN, 10, 1s, 0s): ratio must be in (0, 1]"},
		{breaker.WithFailureRatio(inf, 10, time.Second, 0), "WithFailureRatio(+Inf, 10, 1s, 0s): ratio must be in (0, 1]"},
		{breaker.WithFailureRatio(-inf, 10, time.Second, 0), "WithFailureRatio(-Inf, 10, 1s, 0s): ratio must be in (0, 1]"},
		{breaker.WithFailureRatio(0.5, 0, time.Second, 0), "WithFailureRatio(0.5, 0, 1s, 0s): minimum calls must be in [1, 2^32)"},
		{breaker.WithFailureRatio(0.5, 10, 0, 0), "WithFailureRatio(0.5, 10, 0s, 0s): window must be positive"},
		{breaker.WithFailureRatio(0.5, 10, time.Second, -1), "WithFailureRatio(0.5, 10, 1s, -1ns): bucket period must be in [0, window]"},
		{breaker.WithFailureRatio(0.5, 10, time.Second, 2*time.Second), "WithFailureRatio(0.5, 10, 1s, 2s): bucket period must be in [0, window]"},
		{breaker.WithFailureRatio(0.5, 10, time.Second, time.Millisecond-1), "WithFailureRatio(0.5, 10, 1s, 999.999µs): window must hold at most 1000 buckets"},
		{breaker.WithFailureRatio(0.5, 10, time.Hour, time.Nanosecond), "WithFailureRatio(0.5, 10, 1h0m0s, 1ns): window must hold at most 1000 buckets"},
		{breaker.WithOpenDuration(0), "WithOpenDuration(0s): must be positive"},
		{breaker.WithHalfOpenProbes(0), "WithHalfOpenProbes(0): must be in [1, 2^32)"},
		{breaker.WithRetries(-1), "WithRetries(-1): must be in [0, 100]"},
		{breaker.WithRetries(101), "WithRetries(101): must be in [0, 100]"},
		{breaker.WithRetries(1, breaker.WithBudget(shared), breaker.WithBudgetRatio(0.2)),
			"WithBudget: a shared budget is tuned in NewBudget, not by BudgetOptions given with it"},
		{breaker.WithBackoff(0, time.Second), "WithBackoff(0s, 1s): initial must be positive and at most the maximum"},
		{breaker.WithBackoff(time.Second, time.Millisecond), "WithBackoff(1s, 1ms): initial must be positive and at most the maximum"},
		{breaker.WithJitter(1), "WithJitter(1): must be in [0, 1)"},
		{breaker.WithJitter(-0.1), "WithJitter(-0.1): must be in [0, 1)"},
		{breaker.WithJitter(nan), "WithJitter(NaN): must be in [0, 1)"},
		{breaker.WithJitter(inf), "WithJitter(+Inf): must be in [0, 1)"},
		{breaker.WithJitter(-inf), "WithJitter(-Inf): must be in [0, 1)"},
		{breaker.WithBudgetRatio(-1), "WithBudgetRatio(-1): must be in [0, 100]"},
		{breaker.WithBudgetRatio(101), "WithBudgetRatio(101): must be in [0, 100]"},
		{breaker.WithBudgetRatio(nan), "WithBudgetRatio(NaN): must be in [0, 100]"},
		{breaker.WithBudgetRatio(inf), "WithBudgetRatio(+Inf): must be in [0, 100]"},
		{breaker.WithBudgetRatio(-inf), "WithBudgetRatio(-Inf): must be in [0, 100]"},
		{breaker.WithBudgetMinPerSecond(-1), "WithBudgetMinPerSecond(-1): must be in [0, 1e6]"},
		{breaker.WithBudgetMinPerSecond(2e6), "WithBudgetMinPerSecond(2e+06): must be in [0, 1e6]"},
		{breaker.WithBudgetMinPerSecond(nan), "WithBudgetMinPerSecond(NaN): must be in [0, 1e6]"},
		{breaker.WithBudgetMinPerSecond(inf), "WithBudgetMinPerSecond(+Inf): must be in [0, 1e6]"},
		{breaker.WithBudgetMinPerSecond(-inf), "WithBudgetMinPerSecond(-Inf): must be in [0, 1e6]"},
		{breaker.WithBudgetWindow(9 * time.Millisecond), "WithBudgetWindow(9ms): must be at least 10ms"},
		{breaker.WithAdaptiveThrottle(0), "WithAdaptiveThrottle(0): k must be in [1, 100]"},
		{breaker.WithAdaptiveThrottle(0.5), "WithAdaptiveThrottle(0.5): k must be in [1, 100]"},
		{breaker.WithAdaptiveThrottle(101), "WithAdaptiveThrottle(101): k must be in [1, 100]"},
		{breaker.WithAdaptiveThrottle(nan), "WithAdaptiveThrottle(NaN): k must be in [1, 100]"},
		{breaker.WithAdaptiveThrottle(inf), "WithAdaptiveThrottle(+Inf): k must be in [1, 100]"},
		{breaker.WithAdaptiveThrottle(-inf), "WithAdaptiveThrottle(-Inf): k must be in [1, 100]"},
		{breaker.WithThrottleWindow(-time.Second), "WithThrottleWindow(-1s): must be at least 10ms"},
		{breaker.WithThrottleWindow(9 * time.Millisecond), "WithThrottleWindow(9ms): must be at least 10ms"},
		{breaker.WithRetryAfterCap(-1), "WithRetryAfterCap(-1ns): must not be negative"},
	}
	for _, tt := range tests {
		builds := constructions(tt.opt)
		if len(builds) == 0 {
			t.Fatalf("%s: %T is no option", tt.want, tt.opt)
		}
		for name, build := range builds {
			t.Run(name+"/"+tt.want, func(t *testing.T) {
				v, err := build()
				if !errors.Is(err, breaker.ErrInvalidConfig) || err.Error() != "breaker: invalid config: "+tt.want {
					t.Fatalf("error %v, want ErrInvalidConfig with %q", err, tt.want)
				}
				switch v := v.(type) {
				case *breaker.Breaker, *breaker.Transport, *breaker.Budget:
					if !isNil(v) {
						t.Fatalf("returned %v with the error", v)
					}
				}
			})
		}
	}
	if b, err := breaker.New(""); !errors.Is(err, breaker.ErrInvalidConfig) || b != nil ||
		err.Error() != "breaker: invalid config: empty name" {
		t.Fatalf("New(\"\") = %v, %v", b, err)
	}
}

func isNil(v any) bool {
	switch v := v.(type) {
	case *breaker.Breaker:
		return v == nil
	case *breaker.Transport:
		return v == nil
	case *breaker.Budget:
		return v == nil
	}
	return false
}

// TestOptionScopes pins which constructor takes which option: an option
// that means nothing to a constructor has a type that does not compile
// there. The compiler enforces it through the return types; this test
// guards the dynamic types behind them, so that no option value can be
// converted into a scope it does not belong to.
func TestOptionScopes(t *testing.T) {
	b, _ := breaker.NewBudget()
	type scope struct{ option, transport, retry, budget, throttle bool }
	tests := []struct {
		name string
		opt  any
		want scope
	}{
		{"WithConsecutiveFailures", breaker.WithConsecutiveFailures(1), scope{option: true, transport: true}},
		{"WithFailureRatio", breaker.WithFailureRatio(0.5, 1, time.Second, 0), scope{option: true, transport: true}},
		{"WithOpenDuration", breaker.WithOpenDuration(time.Second), scope{option: true, transport: true}},
		{"WithHalfOpenProbes", breaker.WithHalfOpenProbes(1), scope{option: true, transport: true}},
		{"WithClassifier", breaker.WithClassifier(nil), scope{option: true, transport: true}},
		{"WithOnStateChange", breaker.WithOnStateChange(nil), scope{option: true, transport: true}},
		{"WithLogger", breaker.WithLogger(nil), scope{option: true, transport: true}},
		{"WithMeterProvider", breaker.WithMeterProvider(nil), scope{option: true, transport: true}},
		{"WithClock", breaker.WithClock(nil), scope{option: true, transport: true}},
		{"WithRetries", breaker.WithRetries(1), scope{option: true, transport: true}},
		{"WithAdaptiveThrottle", breaker.WithAdaptiveThrottle(2), scope{option: true, transport: true}},
		{"WithKeyFunc", breaker.WithKeyFunc(nil), scope{transport: true}},
		{"WithRetryAfterCap", breaker.WithRetryAfterCap(0), scope{transport: true}},
		{"WithBackoff", breaker.WithBackoff(1, 1), scope{retry: true}},
		{"WithJitter", breaker.WithJitter(0), scope{retry: true}},
		{"WithRetryIf", breaker.WithRetryIf(nil), scope{retry: true}},
		{"WithBudget", breaker.WithBudget(b), scope{retry: true}},
		{"WithBudgetRatio", breaker.WithBudgetRatio(0), scope{retry: true, budget: true}},
		{"WithBudgetMinPerSecond", breaker.WithBudgetMinPerSecond(0), scope{retry: true, budget: true}},
		{"WithBudgetWindow", breaker.WithBudgetWindow(time.Second), scope{retry: true, budget: true}},
		{"WithThrottleWindow", breaker.WithThrottleWindow(time.Second), scope{throttle: true}},
		{"WithRandom", breaker.WithRandom(nil), scope{throttle: true}},
	}
	for _, tt := range tests {
		var got scope
		_, got.option = tt.opt.(breaker.Option)
		_, got.transport = tt.opt.(breaker.TransportOption)
		_, got.retry = tt.opt.(breaker.RetryOption)
		_, got.budget = tt.opt.(breaker.BudgetOption)
		_, got.throttle = tt.opt.(breaker.ThrottleOption)
		if got != tt.want {
			t.Errorf("%s implements %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestNilMeansDefault: nil options, and nil providers, loggers, clocks,
// funcs and budgets, are the defaults, at every level of nesting.
func TestNilMeansDefault(t *testing.T) {
	b, err := breaker.New("x", nil,
		breaker.WithClassifier(nil), breaker.WithOnStateChange(nil), breaker.WithLogger(nil),
		breaker.WithMeterProvider(nil), breaker.WithClock(nil),
		breaker.WithRetries(1, nil, breaker.WithRetryIf(nil), breaker.WithBudget(nil), breaker.WithBackoff(time.Nanosecond, time.Nanosecond)),
		breaker.WithConsecutiveFailures(2))
	if err != nil {
		t.Fatal(err)
	}
	// The default classifier counts errBoom as a failure, the default
	// predicate retries it, and the breaker's own budget (its floor allows
	// 10 retries at once) pays for the retry; the two failures open it.
	n := 0
	err = b.Do(context.Background(), func(context.Context) error { n++; return errBoom })
	var re *breaker.RetryError
	if !errors.As(err, &re) || re.Reason != breaker.ReasonExhausted || n != 2 || b.State() != breaker.Open {
		t.Fatalf("Do = %v after %d attempts, state %v", err, n, b.State())
	}
	th, err := breaker.New("x", breaker.WithAdaptiveThrottle(2, nil, breaker.WithRandom(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := th.Do(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	if bud, err := breaker.NewBudget(nil); err != nil || bud == nil {
		t.Fatalf("NewBudget(nil) = %v, %v", bud, err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	tr, err := breaker.NewTransport(nil, nil, breaker.WithKeyFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got := tr.Breaker(srv.Listener.Addr().String()).Name(); got != srv.Listener.Addr().String() {
		t.Fatalf("breaker named %q, want the host", got)
	}
}

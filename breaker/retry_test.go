package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/internal/metrictest"
)

// generous is a budget that never denies, for tests about the backoff.
func generous(t *testing.T) breaker.RetryOption {
	t.Helper()
	b, err := breaker.NewBudget(breaker.WithBudgetRatio(100), breaker.WithBudgetMinPerSecond(1e6))
	if err != nil {
		t.Fatal(err)
	}
	return breaker.WithBudget(b)
}

func retryCounts(r *metrictest.Reader) map[string]int64 {
	return byAttrs(r, "blastradius.breaker.retries", "result")
}

// failing records the fake time of every attempt and always fails.
type failing struct{ at []time.Time }

func (f *failing) fn(context.Context) error { f.at = append(f.at, time.Now()); return errBoom }

func (f *failing) gaps() []time.Duration {
	var g []time.Duration
	for i := 1; i < len(f.at); i++ {
		g = append(g, f.at[i].Sub(f.at[i-1]))
	}
	return g
}

// TestBackoffWithinJitter: every wait lies in [w(1-j), w(1+j)] where w
// doubles from the initial interval up to the maximum; the waits vary.
func TestBackoffWithinJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const initial, maxInterval, jitter = 100 * time.Millisecond, 300 * time.Millisecond, 0.5
		b := mustNew(t, breaker.WithRetries(4, generous(t), breaker.WithBackoff(initial, maxInterval), breaker.WithJitter(jitter)),
			breaker.WithConsecutiveFailures(1000))
		nominal := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}
		distinct := map[time.Duration]bool{}
		for trial := range 200 {
			var f failing
			err := b.Do(context.Background(), f.fn)
			var re *breaker.RetryError
			if !errors.As(err, &re) || re.Reason != breaker.ReasonExhausted || re.Attempts != 5 || !errors.Is(err, errBoom) {
				t.Fatalf("trial %d: err = %v", trial, err)
			}
			for i, g := range f.gaps() {
				lo := time.Duration(float64(nominal[i]) * (1 - jitter))
				hi := time.Duration(float64(nominal[i]) * (1 + jitter))
				if g < lo || g > hi {
					t.Fatalf("trial %d wait %d = %v, outside [%v, %v]", trial, i, g, lo, hi)
				}
				distinct[g] = true
			}
		}
		if len(distinct) < 100 {
			t.Fatalf("only %d distinct waits in 800: no jitter?", len(distinct))
		}
	})
}

// TestBackoffNoJitter pins the exact waits with jitter off.
func TestBackoffNoJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithRetries(4, generous(t), breaker.WithBackoff(100*time.Millisecond, 250*time.Millisecond),
			breaker.WithJitter(0)), breaker.WithConsecutiveFailures(1000))
		var f failing
		_ = b.Do(context.Background(), f.fn)
		want := "[100ms 200ms 250ms 250ms]"
		if got := fmt.Sprint(f.gaps()); got != want {
			t.Fatalf("waits %s, want %s", got, want)
		}
	})
}

func TestRetryThenSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := metrictest.New(t)
		b := mustNew(t, breaker.WithRetries(3, generous(t)), breaker.WithMeterProvider(reader))
		n := 0
		v, err := breaker.Call(context.Background(), b, func(context.Context) (int, error) {
			n++
			if n < 3 {
				return n, errBoom
			}
			return n, nil
		})
		if err != nil || v != 3 {
			t.Fatalf("Call = %d, %v; want 3, nil", v, err)
		}
		if got, want := fmt.Sprint(callCounts(reader)), "map[failure:2 success:1]"; got != want {
			t.Fatalf("calls %s, want %s", got, want)
		}
		if got, want := fmt.Sprint(retryCounts(reader)), "map[attempted:2]"; got != want {
			t.Fatalf("retries %s, want %s", got, want)
		}
	})
}

// TestNotRetried: errors that must not be retried return after one attempt,
// unchanged.
func TestNotRetried(t *testing.T) {
	permanent := backoff.Permanent(errBoom)
	errSoft := errors.New("soft")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		opts []breaker.Option
	}{
		{"permanent", context.Background(), permanent, nil},
		{"nested ErrOpen", context.Background(), fmt.Errorf("inner: %w", breaker.ErrOpen), nil},
		{"ErrThrottled", context.Background(), breaker.ErrThrottled, nil},
		{"caller cancelled", cancelled, context.Canceled, nil},
		{"predicate says no", context.Background(), errSoft, []breaker.Option{breaker.WithRetries(3, generous(t),
			breaker.WithRetryIf(func(err error) bool { return !errors.Is(err, errSoft) }))}},
		{"classified success", context.Background(), errSoft, []breaker.Option{breaker.WithClassifier(func(context.Context, error) breaker.Outcome { return breaker.Success })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := mustNew(t, append([]breaker.Option{breaker.WithRetries(3, generous(t))}, tt.opts...)...)
				n := 0
				err := b.Do(tt.ctx, func(context.Context) error { n++; return tt.err })
				if n != 1 || err != tt.err {
					t.Fatalf("attempts %d, err %v; want 1, %v unchanged", n, err, tt.err)
				}
			})
		})
	}
	t.Run("predicate says yes to an excluded error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := mustNew(t, breaker.WithRetries(2, generous(t), breaker.WithRetryIf(func(error) bool { return true })),
				breaker.WithClassifier(func(context.Context, error) breaker.Outcome { return breaker.Excluded }))
			n := 0
			err := b.Do(context.Background(), func(context.Context) error { n++; return errSoft })
			if n != 3 || !errors.Is(err, errSoft) {
				t.Fatalf("attempts %d, err %v", n, err)
			}
		})
	})
}

// TestRetryStopsWhenBreakerOpens: a retry is never made against an open
// breaker, and a rejection is never retried.
func TestRetryStopsWhenBreakerOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := metrictest.New(t)
		b := mustNew(t, breaker.WithRetries(5, generous(t)), breaker.WithConsecutiveFailures(2), breaker.WithMeterProvider(reader))
		var f failing
		err := b.Do(context.Background(), f.fn)
		var re *breaker.RetryError
		if !errors.As(err, &re) || re.Reason != breaker.ReasonOpen || re.Attempts != 2 || re.Err != errBoom || len(f.at) != 2 {
			t.Fatalf("err = %#v, attempts %d", err, len(f.at))
		}
		err = b.Do(context.Background(), f.fn)
		if err != breaker.ErrOpen || len(f.at) != 2 {
			t.Fatalf("open breaker: err = %v, attempts %d", err, len(f.at))
		}
		if got, want := fmt.Sprint(retryCounts(reader)), "map[attempted:1]"; got != want {
			t.Fatalf("retries %s, want %s", got, want)
		}
	})
}

// TestRetryDeadline: a retry whose wait would end after ctx's deadline is
// not started, and Do returns at once, never sleeping past the deadline.
func TestRetryDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithRetries(5, generous(t), breaker.WithJitter(0), breaker.WithBackoff(100*time.Millisecond, time.Second)),
			breaker.WithConsecutiveFailures(1000))
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		defer cancel()
		start := time.Now()
		var f failing
		err := b.Do(ctx, f.fn)
		// waits 100ms, then 200ms would end at 300ms > 250ms: stop at 100ms.
		var re *breaker.RetryError
		if !errors.As(err, &re) || re.Reason != breaker.ReasonDeadline || re.Attempts != 2 || !errors.Is(err, errBoom) {
			t.Fatalf("err = %v", err)
		}
		if el := time.Since(start); el != 100*time.Millisecond {
			t.Fatalf("returned after %v, want 100ms", el)
		}
		if ctx.Err() != nil {
			t.Fatal("slept past the deadline")
		}
	})
}

// TestRetryCancel: ctx.Done ends a wait at once.
func TestRetryCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithRetries(3, generous(t), breaker.WithJitter(0), breaker.WithBackoff(time.Second, time.Second)))
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(300 * time.Millisecond)
			cancel()
		}()
		start := time.Now()
		err := b.Do(ctx, fail)
		if el := time.Since(start); el != 300*time.Millisecond {
			t.Fatalf("returned after %v, want 300ms", el)
		}
		var re *breaker.RetryError
		if !errors.As(err, &re) || re.Reason != breaker.ReasonCanceled || re.Attempts != 1 ||
			!errors.Is(err, context.Canceled) || !errors.Is(err, errBoom) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestBudgetExhaustionAndRefill walks the ratio part of the budget.
func TestBudgetExhaustionAndRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := metrictest.New(t)
		bud, err := breaker.NewBudget(breaker.WithBudgetRatio(0.1), breaker.WithBudgetMinPerSecond(0), breaker.WithBudgetWindow(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		b := mustNew(t, breaker.WithRetries(1, breaker.WithBudget(bud), breaker.WithBackoff(time.Millisecond, time.Millisecond), breaker.WithJitter(0)),
			breaker.WithMeterProvider(reader), breaker.WithConsecutiveFailures(1000))
		ctx := context.Background()
		for range 100 {
			_ = b.Do(ctx, ok)
		}
		// After 100 successes and k failing calls, requests = 100+k; a retry is
		// allowed while retries+1 <= 0.1*(100+k): 11 failing calls retry, the
		// 12th is denied.
		retried := 0
		for k := 1; ; k++ {
			err := b.Do(ctx, fail)
			var re *breaker.RetryError
			if !errors.As(err, &re) || !errors.Is(err, errBoom) {
				t.Fatalf("call %d: err %v", k, err)
			}
			if re.Reason == breaker.ReasonBudget {
				if re.Attempts != 1 || !errors.Is(err, breaker.ErrRetryBudget) || re.Err != errBoom {
					t.Fatalf("denied: %#v", re)
				}
				break
			}
			retried++
		}
		if retried != 11 {
			t.Fatalf("%d calls retried before the budget ran out, want 11", retried)
		}
		// The window passes: old requests no longer fund retries.
		time.Sleep(11 * time.Second)
		if err := b.Do(ctx, fail); !errors.Is(err, breaker.ErrRetryBudget) {
			t.Fatalf("after the window: %v", err)
		}
		// 9 new requests (plus that failed one) fund exactly one retry.
		for range 9 {
			_ = b.Do(ctx, ok)
		}
		if err := b.Do(ctx, fail); errors.Is(err, breaker.ErrRetryBudget) {
			t.Fatalf("refilled budget denied: %v", err)
		}
		if err := b.Do(ctx, fail); !errors.Is(err, breaker.ErrRetryBudget) {
			t.Fatalf("second retry allowed: %v", err)
		}
		if got, want := fmt.Sprint(retryCounts(reader)), "map[attempted:12 denied:3]"; got != want {
			t.Fatalf("retries %s, want %s", got, want)
		}
	})
}

// TestBudgetFloor: with no ratio, the per-second floor alone allows
// retries, as a token bucket.
func TestBudgetFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bud, err := breaker.NewBudget(breaker.WithBudgetRatio(0), breaker.WithBudgetMinPerSecond(2))
		if err != nil {
			t.Fatal(err)
		}
		b := mustNew(t, breaker.WithRetries(1, breaker.WithBudget(bud), breaker.WithBackoff(time.Millisecond, time.Millisecond), breaker.WithJitter(0)),
			breaker.WithConsecutiveFailures(1000))
		denied := func() bool { return errors.Is(b.Do(context.Background(), fail), breaker.ErrRetryBudget) }
		if got := fmt.Sprint(denied(), denied(), denied()); got != "false false true" {
			t.Fatalf("denied: %s; want a burst of 2", got)
		}
		time.Sleep(500 * time.Millisecond) // one token back at 2/s
		if got := fmt.Sprint(denied(), denied()); got != "false true" {
			t.Fatalf("denied: %s; want one retry back after 500ms", got)
		}
	})
}

// TestBudgetShared: two breakers retry out of one pool.
func TestBudgetShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bud, err := breaker.NewBudget(breaker.WithBudgetRatio(0.5), breaker.WithBudgetMinPerSecond(0))
		if err != nil {
			t.Fatal(err)
		}
		opts := []breaker.Option{breaker.WithRetries(1, breaker.WithBudget(bud), breaker.WithBackoff(time.Millisecond, time.Millisecond)),
			breaker.WithConsecutiveFailures(1000)}
		a, _ := breaker.New("a", opts...)
		c, _ := breaker.New("c", opts...)
		ctx := context.Background()
		_ = a.Do(ctx, ok)
		_ = a.Do(ctx, ok)
		_ = a.Do(ctx, ok) // 3 requests
		// c's failing call is the 4th request: 1 retry <= 0.5*4 ... the 2nd
		// (5 requests, 2 retries <= 2.5) too, the 3rd (6, 3 <= 3) too, the
		// 4th (7, 4 > 3.5) is denied.
		for i := range 3 {
			if err := c.Do(ctx, fail); errors.Is(err, breaker.ErrRetryBudget) {
				t.Fatalf("retry %d denied", i)
			}
		}
		if err := c.Do(ctx, fail); !errors.Is(err, breaker.ErrRetryBudget) {
			t.Fatalf("4th retry allowed: %v", err)
		}
	})
}

// TestThrottleFormulaExact drives the throttle with a fixed random number:
// an attempt is rejected exactly when that number is below
// max(0, (requests − K·accepts)/(requests + 1)).
func TestThrottleFormulaExact(t *testing.T) {
	for _, k := range []float64{1, 2, 3} {
		for _, x := range []float64{0.01, 0.3, 0.75} {
			t.Run(fmt.Sprintf("k=%v/x=%v", k, x), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					b := mustNew(t, breaker.WithAdaptiveThrottle(k, breaker.WithThrottleWindow(time.Minute), breaker.WithRandom(func() float64 { return x })),
						breaker.WithConsecutiveFailures(1e6))
					ctx := context.Background()
					req, acc := 0.0, 0.0
					throttled := 0
					for i := range 800 {
						fn := fail
						if i < 40 {
							fn = ok
						}
						p := math.Max(0, (req-k*acc)/(req+1))
						err := b.Do(ctx, fn)
						if want := x < p; (err == breaker.ErrThrottled) != want {
							t.Fatalf("call %d: p=%.4f x=%v err=%v", i, p, x, err)
						}
						req++
						if err == nil {
							acc++
						}
						if err == breaker.ErrThrottled {
							throttled++
						}
					}
					if throttled == 0 {
						t.Fatal("never throttled")
					}
				})
			})
		}
	}
}

// TestThrottleFormulaStatistical uses the real random source: with a
// backend that rejects everything after 100 successes, each call's
// rejection probability is known in advance (every call adds a request,
// none an accept), so the number of rejections must be within 5 standard
// deviations of the sum of the probabilities.
func TestThrottleFormulaStatistical(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := metrictest.New(t)
		const k = 2.0
		// The default window, 2 minutes; the real random source.
		b := mustNew(t, breaker.WithAdaptiveThrottle(k), breaker.WithConsecutiveFailures(1e6), breaker.WithMeterProvider(reader))
		ctx := context.Background()
		for range 100 {
			_ = b.Do(ctx, ok)
		}
		var mean, variance float64
		rejected := 0
		for i := range 20000 {
			req := float64(100 + i)
			p := math.Max(0, (req-k*100)/(req+1))
			mean += p
			variance += p * (1 - p)
			if b.Do(ctx, fail) == breaker.ErrThrottled {
				rejected++
			}
		}
		sd := math.Sqrt(variance)
		t.Logf("rejections %d, expected %.1f ± %.1f", rejected, mean, sd)
		if math.Abs(float64(rejected)-mean) > 5*sd {
			t.Fatalf("rejections %d, expected %.1f ± 5×%.1f", rejected, mean, sd)
		}
		c := callCounts(reader)
		if c["throttled"] != int64(rejected) || c["failure"] != int64(20000-rejected) || c["success"] != 100 {
			t.Fatalf("calls %v, rejected %d", c, rejected)
		}
	})
}

// TestThrottleWindowForgets: once the bad window has passed, nothing is
// throttled.
func TestThrottleWindowForgets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithAdaptiveThrottle(2, breaker.WithThrottleWindow(10*time.Second), breaker.WithRandom(func() float64 { return 0.5 })),
			breaker.WithConsecutiveFailures(1e6))
		ctx := context.Background()
		for range 100 {
			_ = b.Do(ctx, fail)
		}
		if err := b.Do(ctx, ok); err != breaker.ErrThrottled {
			t.Fatalf("err = %v, want ErrThrottled", err)
		}
		time.Sleep(11 * time.Second)
		if err := b.Do(ctx, ok); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
}

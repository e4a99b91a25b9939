package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/blastradius/blastradius/breaker"
)

func Example() {
	b, err := breaker.New("payments",
		breaker.WithConsecutiveFailures(3),
		breaker.WithOpenDuration(30*time.Second),
		breaker.WithOnStateChange(func(name string, from, to breaker.State) {
			fmt.Printf("%s: %s -> %s\n", name, from, to)
		}),
	)
	if err != nil {
		panic(err)
	}
	sick := errors.New("upstream 503")
	for range 4 {
		err := b.Do(context.Background(), func(ctx context.Context) error { return sick })
		fmt.Println(err)
	}
	fmt.Println(b.State())
	// Output:
	// upstream 503
	// upstream 503
	// payments: closed -> open
	// upstream 503
	// breaker: open
	// open
}

func ExampleCall() {
	b, _ := breaker.New("lookup")
	price, err := breaker.Call(context.Background(), b, func(ctx context.Context) (int, error) {
		return 1299, nil
	})
	fmt.Println(price, err, b.State())
	// Output: 1299 <nil> closed
}

// ExampleNewTransport wraps an http.Client: idempotent requests that fail
// with a 5xx, a 429 or a transport error are retried within the retry
// budget, and a host whose breaker is open fails fast with ErrOpen.
func ExampleNewTransport() {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()

	tr, err := breaker.NewTransport(nil,
		breaker.WithRetries(2, breaker.WithBackoff(10*time.Millisecond, 100*time.Millisecond)),
		breaker.WithOpenDuration(30*time.Second),
	)
	if err != nil {
		panic(err) // wraps breaker.ErrInvalidConfig and names the option
	}
	client := &http.Client{Transport: tr}
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body), "after", hits.Load(), "attempts")

	// A sick host: 5 consecutive failures (the default) open its breaker
	// during the second Get; the third fails fast, through a *url.Error.
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "sick", http.StatusInternalServerError)
	}))
	defer sick.Close()
	for range 3 {
		resp, err := client.Get(sick.URL)
		if err != nil {
			var ue *url.Error
			fmt.Println(errors.As(err, &ue), errors.Is(err, breaker.ErrOpen))
			continue
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// 200 hello after 2 attempts
	// 500
	// 500
	// true true
}

// ExampleNewBudget shares one retry budget between two breakers: with no
// ratio and a floor of one retry per second, only one retry is allowed
// across both.
func ExampleNewBudget() {
	budget, err := breaker.NewBudget(breaker.WithBudgetRatio(0), breaker.WithBudgetMinPerSecond(1))
	if err != nil {
		panic(err)
	}
	retries := breaker.WithRetries(3, breaker.WithBudget(budget), breaker.WithBackoff(time.Millisecond, time.Millisecond))
	users, _ := breaker.New("users", retries)
	orders, _ := breaker.New("orders", retries)
	sick := errors.New("upstream 503")
	attempts := 0
	fn := func(context.Context) error { attempts++; return sick }

	err = users.Do(context.Background(), fn)
	fmt.Println(attempts, err)
	err = orders.Do(context.Background(), fn)
	fmt.Println(attempts, err, errors.Is(err, breaker.ErrRetryBudget), errors.Is(err, sick))
	// Output:
	// 2 breaker: retry budget exhausted after attempt 2: upstream 503
	// 3 breaker: retry budget exhausted after attempt 1: upstream 503 true true
}

// ExampleWithAdaptiveThrottle: after a run of failures the client rejects
// most attempts itself, without sending them.
func ExampleWithAdaptiveThrottle() {
	b, _ := breaker.New("search",
		breaker.WithAdaptiveThrottle(breaker.DefaultThrottleK,
			breaker.WithThrottleWindow(time.Minute),
			breaker.WithRandom(func() float64 { return 0.5 }), // for a stable example
		),
		breaker.WithConsecutiveFailures(1000),
	)
	overloaded := errors.New("overloaded")
	for range 10 {
		_ = b.Do(context.Background(), func(context.Context) error { return overloaded })
	}
	// requests = 10, accepts = 0: p = (10 − 2·0)/(10 + 1) ≈ 0.91 > 0.5.
	err := b.Do(context.Background(), func(context.Context) error { return nil })
	fmt.Println(err, errors.Is(err, breaker.ErrThrottled))
	// Output: breaker: throttled true
}

package blastradius_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/rollout"
)

// This is the quick start of README.md: a handler behind the edge chain
// calls a sick dependency through a breaker and serves a new code path
// behind a gate with a kill switch.
func Example_quickStart() {
	// A dependency that is down, called through a circuit breaker per host.
	payments := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer payments.Close()
	tr, _ := breaker.NewTransport(nil, breaker.WithConsecutiveFailures(2))
	client := &http.Client{Transport: tr}
	// A new code path behind a gate: on for every user, with a kill switch.
	checkoutV2, _ := rollout.New("checkout-v2", rollout.WithPercent(100))

	checkout := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := edge.PrincipalFrom[string](r.Context()) // "" for a bad token: anonymous, not a 500
		if !checkoutV2.Enabled(user) {
			fmt.Fprintf(w, "%q: old checkout\n", user)
			return
		}
		resp, err := client.Get(payments.URL)
		if err != nil { // breaker.ErrOpen after 2 failures in a row: nothing was sent
			http.Error(w, errors.Unwrap(err).Error(), http.StatusServiceUnavailable)
			return
		}
		resp.Body.Close()
		fmt.Fprintf(w, "%q: new checkout, payments said %s\n", user, resp.Status)
	})
	verify := func(_ context.Context, token string) (string, error) {
		if token != "alice-token" {
			return "", edge.ErrInvalid
		}
		return "alice", nil
	}
	handler := edge.Chain(edge.Recover(), edge.Shed(edge.WithAdaptiveLimit()), edge.Auth(verify))(checkout)

	for i, token := range []string{"alice-token", "alice-token", "alice-token", "forged"} {
		if i == 3 {
			checkoutV2.Kill("INC-42: payments down") // one atomic flip, no redeploy
		}
		w, r := httptest.NewRecorder(), httptest.NewRequest("GET", "/checkout", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		handler.ServeHTTP(w, r) // or http.ListenAndServe(addr, handler)
		fmt.Print(w.Code, " ", w.Body)
	}
	// Output:
	// 200 "alice": new checkout, payments said 503 Service Unavailable
	// 200 "alice": new checkout, payments said 503 Service Unavailable
	// 503 breaker: open
	// 200 "": old checkout
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"

	"github.com/blastradius/blastradius/compat"
)

// I3: an API's items field changed from an array to an object, and one
// consumer was missed. The API below serves v1 (array) until it is
// "deployed" to v2 (a single object) halfway through the run; a strict
// consumer and a compat.OneOrMany consumer read the same responses.

type i3Item struct {
	SKU   string `json:"sku"`
	Cents int    `json:"cents"`
}

const i3Requests = 1000

func i3Server() (*httptest.Server, *atomic.Bool) {
	var v2 atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		item := i3Item{SKU: fmt.Sprintf("sku-%d", n), Cents: 100 + n}
		w.Header().Set("Content-Type", "application/json")
		if v2.Load() {
			_ = json.NewEncoder(w).Encode(map[string]any{"order": n, "items": item})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"order": n, "items": []i3Item{item}})
	}))
	return srv, &v2
}

// i3Consume fetches every order and decodes it with decode, returning the
// number of responses the consumer could not use.
func i3Consume(ctx context.Context, srv *httptest.Server, v2 *atomic.Bool, decode func([]byte) error) (failures int, err error) {
	v2.Store(false)
	client := srv.Client()
	for n := range i3Requests {
		if n == i3Requests/2 {
			v2.Store(true) // the API ships v2
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/orders?n="+strconv.Itoa(n), nil)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		if decode(body) != nil {
			failures++
		}
	}
	return failures, nil
}

func runI3(ctx context.Context, cfg config) ([]figure, error) {
	srv, v2 := i3Server()
	defer srv.Close()

	// Without: the consumer that was missed still expects an array.
	strict, err := i3Consume(ctx, srv, v2, func(b []byte) error {
		var resp struct {
			Items []i3Item `json:"items"`
		}
		return json.Unmarshal(b, &resp)
	})
	if err != nil {
		return nil, err
	}

	// With: OneOrMany accepts both shapes and records which it saw.
	var shapes [4]int
	tolerant, err := i3Consume(ctx, srv, v2, func(b []byte) error {
		var resp struct {
			Items compat.OneOrMany[i3Item] `json:"items"`
		}
		if cfg.sabotage == "I3" { // the tour's own failure test: decode strictly
			var strict struct {
				Items []i3Item `json:"items"`
			}
			return json.Unmarshal(b, &strict)
		}
		if err := json.Unmarshal(b, &resp); err != nil {
			return err
		}
		if len(resp.Items.Items) != 1 {
			return fmt.Errorf("want 1 item, got %d", len(resp.Items.Items))
		}
		shapes[resp.Items.Shape]++
		return nil
	})
	if err != nil {
		return nil, err
	}
	half := float64(i3Requests / 2)
	return []figure{
		{Name: "responses the consumer failed on", Without: float64(strict), With: float64(tolerant), Unit: "responses", Target: "0", Pass: tolerant == 0},
		{Name: "array-shaped (v1) responses counted", Without: 0, With: float64(shapes[compat.Many]), Unit: "responses", Target: "= 500 sent", Pass: float64(shapes[compat.Many]) == half},
		{Name: "object-shaped (v2) responses counted", Without: 0, With: float64(shapes[compat.One]), Unit: "responses", Target: "= 500 sent", Pass: float64(shapes[compat.One]) == half},
	}, nil
}

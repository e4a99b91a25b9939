package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// handlerTimeout bounds the store calls of one request to the admin handler.
const handlerTimeout = 5 * time.Second

// Handler returns an admin handler that serves the fleet view of store,
// read-only, as JSON:
//
//	GET /                      List's View
//	GET /gates/{name}/history  ReadHistory's History of the gate
//	GET /gates/{name}/exposure ReadExposure's Exposure; query from and to,
//	                           RFC 3339 times (from defaults to the zero
//	                           time, to to now)
//
// The gate routes need a HistoryStore: with another store they answer 501.
// A bad query is 400, a wrong method 405. Every request must first pass
// authorize, or it is answered 403 Forbidden. A store that cannot be read is
// 502. Mount it under a prefix with http.StripPrefix.
//
// There is no unauthenticated mode: Handler panics, with an error wrapping
// ErrInvalidConfig that names the argument, if store or authorize is nil.
func Handler(store Store, authorize func(*http.Request) bool) http.Handler {
	if store == nil {
		panic(fmt.Errorf("%w: Handler: nil store", ErrInvalidConfig))
	}
	if authorize == nil {
		panic(fmt.Errorf("%w: Handler: nil authorize func: there is no unauthenticated mode", ErrInvalidConfig))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), handlerTimeout)
		defer cancel()
		v, err := List(ctx, store)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, errorBody{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("GET /gates/{name}/history", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), handlerTimeout)
		defer cancel()
		h, err := ReadHistory(ctx, store, r.PathValue("name"))
		if err != nil {
			writeStoreError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, h)
	})
	mux.HandleFunc("GET /gates/{name}/exposure", func(w http.ResponseWriter, r *http.Request) {
		from, to := time.Time{}, time.Now()
		for _, p := range []struct {
			name string
			t    *time.Time
		}{{"from", &from}, {"to", &to}} {
			if v := r.URL.Query().Get(p.name); v != "" {
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("fleet: %s=%q: want an RFC 3339 time", p.name, v)})
					return
				}
				*p.t = t
			}
		}
		if to.Before(from) {
			writeJSON(w, http.StatusBadRequest, errorBody{"fleet: to is before from"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), handlerTimeout)
		defer cancel()
		x, err := ReadExposure(ctx, store, r.PathValue("name"), from, to)
		if err != nil {
			writeStoreError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, x)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorize(r) {
			writeJSON(w, http.StatusForbidden, errorBody{"fleet: forbidden"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// writeStoreError answers 501 for a store that keeps no history, 502
// otherwise.
func writeStoreError(w http.ResponseWriter, err error) {
	code := http.StatusBadGateway
	if errors.Is(err, ErrNoHistoryStore) {
		code = http.StatusNotImplemented
	}
	writeJSON(w, code, errorBody{err.Error()})
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// handlerTimeout bounds the store calls of one request to the admin handler.
const handlerTimeout = 5 * time.Second

// Handler returns an admin handler that serves the fleet view of store:
// GET / answers List's View as JSON. Every request must first pass
// authorize, or it is answered 403 Forbidden. A store that cannot be read is
// 502. Mount it under a prefix with http.StripPrefix.
//
// There is no unauthenticated mode: if authorize (or store) is nil, the
// returned handler answers every request 500 with the error, which is also
// logged at construction.
func Handler(store Store, authorize func(*http.Request) bool) http.Handler {
	if store == nil || authorize == nil {
		err := errors.New("fleet: admin handler needs a store and an authorize func; refusing every request")
		slog.Default().Error(err.Error())
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusInternalServerError, errorBody{err.Error()})
		})
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorize(r) {
			writeJSON(w, http.StatusForbidden, errorBody{"fleet: forbidden"})
			return
		}
		mux.ServeHTTP(w, r)
	})
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

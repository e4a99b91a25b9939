package fleet_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"

	"github.com/blastradius/blastradius/fleet"
)

func TestHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		newFleet(t, mem, 2, gates)
		synctest.Wait()
		f := newFaulty(mem)
		h := fleet.Handler(f, func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer ops" })
		do := func(method, path string, auth bool) *httptest.ResponseRecorder {
			r := httptest.NewRequest(method, path, nil)
			if auth {
				r.Header.Set("Authorization", "Bearer ops")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		if w := do("GET", "/", false); w.Code != http.StatusForbidden {
			t.Errorf("unauthorized: %d", w.Code)
		}
		w := do("GET", "/", true)
		var v fleet.View
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &v) != nil || len(v.Instances) != 2 || !v.Instances[0].Live {
			t.Fatalf("GET /: %d %s", w.Code, w.Body)
		}
		if w := do("POST", "/", true); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST: %d", w.Code)
		}
		if w := do("GET", "/nope", true); w.Code != http.StatusNotFound {
			t.Errorf("GET /nope: %d", w.Code)
		}
		f.partition()
		if w := do("GET", "/", true); w.Code != http.StatusBadGateway {
			t.Errorf("store down: %d", w.Code)
		}
	})
}

// A nil store or authorize func is a configuration error: Handler panics at
// construction with an error wrapping ErrInvalidConfig that names it, as
// rollout.Handler does; there is no unauthenticated mode.
func TestHandlerNilArgumentsPanic(t *testing.T) {
	for _, tc := range []struct {
		name      string
		store     fleet.Store
		authorize func(*http.Request) bool
		want      string
	}{
		{"nil authorize", fleet.NewMemoryStore(), nil, "fleet: invalid config: Handler: nil authorize func: there is no unauthenticated mode"},
		{"nil store", nil, func(*http.Request) bool { return true }, "fleet: invalid config: Handler: nil store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, fleet.ErrInvalidConfig) || err.Error() != tc.want {
					t.Errorf("panic %v, want an error wrapping ErrInvalidConfig: %q", err, tc.want)
				}
			}()
			fleet.Handler(tc.store, tc.authorize)
			t.Error("Handler returned")
		})
	}
}

package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxAdminBody bounds the body of an admin request.
const maxAdminBody = 64 << 10

// Handler returns the admin handler of reg. Every request must first pass
// authorize, or it is answered 403 Forbidden. Routes, relative to where the
// handler is mounted (use http.StripPrefix to mount it under a prefix):
//
//	GET  /               the config info and every gate's Status, as JSON
//	GET  /{name}         one gate's Status
//	POST /{name}/kill    kill; optional body {"reason": "..."}
//	POST /{name}/resume  resume
//	POST /{name}/percent set the percent; body {"percent": 12.5}
//	GET  /{name}/history  the gate's History, as {"gate": name, "events": [...]}
//	GET  /{name}/exposure the gate's Exposure report; query from and to,
//	                      RFC 3339 times (from defaults to the zero time,
//	                      to to now by the registry's clock)
//
// A body is one JSON object with only the fields shown, each spelled
// exactly and given once. A POST answers with the gate's new Status. An
// unknown gate is 404, a bad body or value 400, a body over 64 KiB 413, a
// wrong method 405 (with Allow). Client mistakes never get a 5xx.
//
// There is no unauthenticated mode: Handler panics, with an error wrapping
// ErrInvalidConfig that names the argument, if reg or authorize is nil.
func Handler(reg *Registry, authorize func(*http.Request) bool) http.Handler {
	if reg == nil {
		panic(invalid("Handler: nil registry"))
	}
	if authorize == nil {
		panic(invalid("Handler: nil authorize func: there is no unauthenticated mode"))
	}
	a := &admin{reg: reg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.list)
	mux.HandleFunc("GET /{name}", a.get)
	mux.HandleFunc("POST /{name}/kill", a.kill)
	mux.HandleFunc("POST /{name}/resume", a.resume)
	mux.HandleFunc("POST /{name}/percent", a.percent)
	mux.HandleFunc("GET /{name}/history", a.history)
	mux.HandleFunc("GET /{name}/exposure", a.exposure)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorize(r) {
			writeError(w, http.StatusForbidden, "rollout: forbidden")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type admin struct {
	reg *Registry
}

type listResponse struct {
	Config ConfigInfo `json:"config"`
	Gates  []Status   `json:"gates"`
}

func (a *admin) list(w http.ResponseWriter, _ *http.Request) {
	gs := a.reg.Gates()
	resp := listResponse{Config: a.reg.Config(), Gates: make([]Status, 0, len(gs))}
	for _, g := range gs {
		resp.Gates = append(resp.Gates, g.Status())
	}
	writeJSON(w, http.StatusOK, resp)
}

// gate finds the gate named in the path, or answers 404.
func (a *admin) gate(w http.ResponseWriter, r *http.Request) (*Gate, bool) {
	name := r.PathValue("name")
	g, ok := a.reg.Gate(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("rollout: unknown gate %q", name))
	}
	return g, ok
}

func (a *admin) get(w http.ResponseWriter, r *http.Request) {
	if g, ok := a.gate(w, r); ok {
		writeJSON(w, http.StatusOK, g.Status())
	}
}

func (a *admin) kill(w http.ResponseWriter, r *http.Request) {
	g, ok := a.gate(w, r)
	if !ok {
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if !readBody(w, r, &body, true) {
		return
	}
	if len(body.Reason) > maxReason {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("rollout: reason longer than %d bytes", maxReason))
		return
	}
	if body.Reason == "" {
		body.Reason = "killed through the admin handler"
	}
	a.audit(r, g, "reason", body.Reason)
	g.Kill(body.Reason)
	writeJSON(w, http.StatusOK, g.Status())
}

func (a *admin) resume(w http.ResponseWriter, r *http.Request) {
	g, ok := a.gate(w, r)
	if !ok {
		return
	}
	a.audit(r, g)
	g.Resume()
	writeJSON(w, http.StatusOK, g.Status())
}

func (a *admin) percent(w http.ResponseWriter, r *http.Request) {
	g, ok := a.gate(w, r)
	if !ok {
		return
	}
	var body struct {
		Percent *float64 `json:"percent"`
	}
	if !readBody(w, r, &body, false) {
		return
	}
	if body.Percent == nil {
		writeError(w, http.StatusBadRequest, `rollout: body needs "percent"`)
		return
	}
	if err := g.SetPercent(*body.Percent); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a.audit(r, g, "percent", *body.Percent)
	writeJSON(w, http.StatusOK, g.Status())
}

func (a *admin) history(w http.ResponseWriter, r *http.Request) {
	if g, ok := a.gate(w, r); ok {
		writeJSON(w, http.StatusOK, struct {
			Gate   string  `json:"gate"`
			Events []Event `json:"events"`
		}{g.name, g.History()})
	}
}

func (a *admin) exposure(w http.ResponseWriter, r *http.Request) {
	g, ok := a.gate(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	from, to := time.Time{}, a.reg.now()
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("rollout: %s=%q: want an RFC 3339 time", p.name, v))
			return
		}
		*p.t = t
	}
	if to.Before(from) {
		writeError(w, http.StatusBadRequest, "rollout: to is before from")
		return
	}
	writeJSON(w, http.StatusOK, g.Exposure(from, to))
}

// audit logs an admin action, through the registry's log budget.
func (a *admin) audit(r *http.Request, g *Gate, attrs ...any) {
	attrs = append([]any{attrKey, g.name, "path", r.URL.Path, "remote", r.RemoteAddr}, attrs...)
	a.reg.noisy.Info("rollout: admin request", attrs...)
}

// readBody decodes a JSON object of at most maxAdminBody bytes into v with
// strictDecode. An empty body is accepted if optional. On failure it
// answers 400 or 413 and returns false.
func readBody(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("rollout: body larger than %d bytes", maxAdminBody))
		} else {
			writeError(w, http.StatusBadRequest, "rollout: cannot read body")
		}
		return false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return true
		}
		writeError(w, http.StatusBadRequest, "rollout: empty body")
		return false
	}
	if err := strictDecode(data, v); err != nil {
		writeError(w, http.StatusBadRequest, "rollout: bad JSON body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}

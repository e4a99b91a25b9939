package rollout_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/rollout"
)

const adminToken = "Bearer s3cret"

func authorize(r *http.Request) bool { return r.Header.Get("Authorization") == adminToken }

func TestHandler(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		path     string
		body     string
		noAuth   bool
		code     int
		contains string
	}{
		{"list", "GET", "/", "", false, 200, `"name":"checkout-v2"`},
		{"list shows config", "GET", "/", "", false, 200, `"version":"2026-11-22.1"`},
		{"one gate", "GET", "/search-v3", "", false, 200, `"percent":12.5`},
		{"denied list", "GET", "/", "", true, 403, `forbidden`},
		{"denied kill", "POST", "/search-v3/kill", "", true, 403, `forbidden`},
		{"denied unknown gate", "POST", "/nope/kill", "", true, 403, `forbidden`},
		{"kill without body", "POST", "/search-v3/kill", "", false, 200, `"killed":true`},
		{"kill with reason", "POST", "/search-v3/kill", `{"reason":"INC-9"}`, false, 200, `"reason":"INC-9"`},
		{"kill with bad JSON", "POST", "/search-v3/kill", `{"reason":`, false, 400, `bad JSON`},
		{"kill with unknown field", "POST", "/search-v3/kill", `{"why":"x"}`, false, 400, `unknown field`},
		{"kill with long reason", "POST", "/search-v3/kill", `{"reason":"` + strings.Repeat("r", 1025) + `"}`, false, 400, `reason longer`},
		{"kill with huge body", "POST", "/search-v3/kill", `{"reason":"` + strings.Repeat("r", 70<<10) + `"}`, false, 413, `larger than`},
		{"resume", "POST", "/checkout-v2/resume", "", false, 200, `"killed":false`},
		{"percent", "POST", "/search-v3/percent", `{"percent": 0.5}`, false, 200, `"percent":0.5`},
		{"percent out of range", "POST", "/search-v3/percent", `{"percent": 101}`, false, 400, `outside [0, 100]`},
		{"percent too fine", "POST", "/search-v3/percent", `{"percent": 0.00001}`, false, 400, `multiple of 0.0001`},
		{"percent missing", "POST", "/search-v3/percent", `{}`, false, 400, `needs \"percent\"`},
		{"percent empty body", "POST", "/search-v3/percent", ``, false, 400, `empty body`},
		{"percent not a number", "POST", "/search-v3/percent", `{"percent":"5"}`, false, 400, `bad JSON`},
		{"unknown gate kill", "POST", "/nope/kill", "", false, 404, `unknown gate \"nope\"`},
		{"unknown gate get", "GET", "/nope", "", false, 404, `unknown gate`},
		{"retired gate", "POST", "/power-peg/percent", `{"percent":100}`, false, 404, `unknown gate`},
		{"unknown route", "POST", "/search-v3/explode", "", false, 404, ``},
		{"GET on kill", "GET", "/search-v3/kill", "", false, 405, ``},
		{"DELETE gate", "DELETE", "/search-v3", "", false, 405, ``},
		{"POST list", "POST", "/", "", false, 405, ``},
		{"PUT percent", "PUT", "/search-v3/percent", `{"percent":1}`, false, 405, ``},
		{"history", "GET", "/search-v3/history", "", false, 200, `"kind":"created"`},
		{"denied history", "GET", "/search-v3/history", "", true, 403, `forbidden`},
		{"unknown gate history", "GET", "/nope/history", "", false, 404, `unknown gate`},
		{"POST history", "POST", "/search-v3/history", "", false, 405, ``},
		{"exposure", "GET", "/search-v3/exposure", "", false, 200, `"gate":"search-v3"`},
		{"exposure range", "GET", "/search-v3/exposure?from=2026-11-22T09:00:00Z&to=2026-11-22T10:00:00.5%2B01:00", "", false, 200, `"from":"2026-11-22T09:00:00Z"`},
		{"denied exposure", "GET", "/search-v3/exposure", "", true, 403, `forbidden`},
		{"exposure bad from", "GET", "/search-v3/exposure?from=yesterday", "", false, 400, `from=\"yesterday\": want an RFC 3339 time`},
		{"exposure bad to", "GET", "/search-v3/exposure?to=2026-11-22", "", false, 400, `to=`},
		{"exposure reversed", "GET", "/search-v3/exposure?from=2026-11-22T10:00:00Z&to=2026-11-22T09:00:00Z", "", false, 400, `to is before from`},
		{"unknown gate exposure", "GET", "/nope/exposure", "", false, 404, `unknown gate`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			if _, err := reg.LoadConfig(strings.NewReader(goodConfig)); err != nil {
				t.Fatal(err)
			}
			before := status(t, reg, "search-v3")
			srv := httptest.NewServer(rollout.Handler(reg, authorize))
			defer srv.Close()
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if !tc.noAuth {
				req.Header.Set("Authorization", adminToken)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("%s %s: status %d, want %d; body %s", tc.method, tc.path, resp.StatusCode, tc.code, body)
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("body %s does not contain %s", body, tc.contains)
			}
			if tc.code == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if tc.code != 200 && tc.path != "/checkout-v2/resume" {
				if after := status(t, reg, "search-v3"); after != before {
					t.Errorf("a failed request changed the gate: %+v -> %+v", before, after)
				}
			}
		})
	}
}

func TestHandlerEffects(t *testing.T) {
	reg := newTestRegistry(t)
	srv := httptest.NewServer(rollout.Handler(reg, authorize))
	defer srv.Close()
	post := func(path, body string) rollout.Status {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", adminToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var st rollout.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	g, _ := reg.Gate("checkout-v2")
	if st := post("/checkout-v2/percent", `{"percent":100}`); st.Percent != 100 || !g.Enabled("anyone") {
		t.Fatalf("percent: %+v", st)
	}
	if st := post("/checkout-v2/kill", `{"reason":"INC-10"}`); !st.Killed || st.KilledBy != rollout.KilledByCall || g.Enabled("anyone") {
		t.Fatalf("kill: %+v", st)
	}
	if st := post("/checkout-v2/resume", ``); st.Killed || !g.Enabled("anyone") {
		t.Fatalf("resume: %+v", st)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Header.Set("Authorization", adminToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Config rollout.ConfigInfo `json:"config"`
		Gates  []rollout.Status   `json:"gates"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if len(list.Gates) != 2 || list.Gates[0].Name != "checkout-v2" || list.Gates[0].Percent != 100 || list.Gates[1].Name != "search-v3" {
		t.Fatalf("list: %+v", list)
	}
}

// TestHandlerMounted: under a prefix with http.StripPrefix.
func TestHandlerMounted(t *testing.T) {
	reg := newTestRegistry(t)
	mux := http.NewServeMux()
	mux.Handle("/admin/rollout/", http.StripPrefix("/admin/rollout", rollout.Handler(reg, authorize)))
	req := httptest.NewRequest("POST", "/admin/rollout/search-v3/kill", nil)
	req.Header.Set("Authorization", adminToken)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != 200 || !status(t, reg, "search-v3").Killed {
		t.Fatalf("mounted kill: %d %s", rec.Code, rec.Body)
	}
}

// The history and exposure routes report what Gate.History and
// Gate.Exposure do.
func TestHandlerHistoryExposure(t *testing.T) {
	clk := fakeclock.New()
	t0 := clk.Now()
	reg, _ := rollout.NewRegistry(rollout.WithClock(clk.Now))
	g, _ := rollout.New("orders-v2", rollout.WithClock(clk.Now), rollout.WithPercent(100))
	if err := reg.Register(g); err != nil {
		t.Fatal(err)
	}
	p := path(t, g, orderArms)
	_, _ = p.Run(context.Background(), "order-7", "order-7")
	clk.Advance(time.Minute)
	g.Kill("INC-14")
	clk.Advance(time.Minute)
	srv := httptest.NewServer(rollout.Handler(reg, authorize))
	defer srv.Close()
	get := func(path string, v any) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", adminToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var h struct {
		Gate   string          `json:"gate"`
		Events []rollout.Event `json:"events"`
	}
	get("/orders-v2/history", &h)
	if h.Gate != "orders-v2" || len(h.Events) != 2 || h.Events[1].Kind != rollout.EventKill || h.Events[1].Reason != "INC-14" ||
		!h.Events[1].At.Equal(t0.Add(time.Minute)) {
		t.Errorf("history = %+v", h)
	}
	var rep rollout.Report
	get("/orders-v2/exposure?from="+t0.Format(time.RFC3339), &rep)
	if !rep.From.Equal(t0) || !rep.To.Equal(clk.Now()) || len(rep.Windows) != 2 || rep.Windows[0].New.Invalid != 1 ||
		len(rep.Failures) != 1 || rep.Failures[0].Key != "order-7" || rep.Failures[0].Outcome != rollout.OutcomeInvalid {
		t.Errorf("exposure = %+v", rep)
	}
}

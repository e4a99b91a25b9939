package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/console"
	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/internal/fleettest"
	"github.com/blastradius/blastradius/rollout"
)

func TestRender(t *testing.T) {
	reg := newRegistry(t)
	h := console.Handler(reg, authorize)

	w := get(t, h, "/")
	wantStatus(t, w, http.StatusOK)
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	wantBody(t, w,
		`<link rel="stylesheet" href="./style.css">`,
		`<a href="./gates/checkout-v2">checkout-v2</a> <span class="state LIVE">LIVE</span>`,
		`<dd class="percent">5%</dd>`, "<dd>payments</dd>",
		"step 1 of 3, next promotion", "(in 59m)",
		"no look yet: too few calls of the new arm", "window new: 0 calls, 0 failed, 0 panics, 0 mismatches",
		"STALE: expired", "remove the gate from the code",
		`action="./gates/checkout-v2/kill"`, `action="./gates/checkout-v2/percent"`,
		`name="reason" required`)
	if strings.Contains(w.Body.String(), `id="fleet"`) {
		t.Error("a console without WithFleet shows a fleet table")
	}

	w = get(t, h, "/style.css")
	wantStatus(t, w, http.StatusOK)
	if ct := w.Header().Get("Content-Type"); ct != "text/css; charset=utf-8" {
		t.Errorf("style.css Content-Type %q", ct)
	}

	// A gate's page: links one level up, its history and exposure.
	gate(t, reg, "checkout-v2").Kill("INC-7: latency")
	w = get(t, h, "/gates/checkout-v2")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `href="../style.css"`, `<span class="state KILLED">KILLED</span>`,
		"by <strong>call</strong>", `<q class="reason">INC-7: latency</q>`,
		"<h2>History</h2>", "<td>kill</td><td>call</td><td>5% killed</td><td>INC-7: latency</td>",
		"<td>created</td>", "<h2>Exposure</h2>", "<td>kill call: INC-7: latency</td>", `action="../gates/checkout-v2/resume"`)

	w = get(t, h, "/gates/smars")
	wantStatus(t, w, http.StatusNotFound)
	wantBody(t, w, `console: unknown gate &#34;smars&#34;`)
	wantStatus(t, get(t, h, "/nothing/here"), http.StatusNotFound)
}

func TestSecurityHeaders(t *testing.T) {
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
	}
	h := console.Handler(newRegistry(t), authorize)
	kill := url.Values{"reason": {"INC-1"}, "confirm": {"yes"}}
	for _, c := range []struct {
		name string
		req  req
		code int
	}{
		{"page", req{method: "GET", path: "/"}, 200},
		{"gate", req{method: "GET", path: "/gates/checkout-v2"}, 200},
		{"style", req{method: "GET", path: "/style.css"}, 200},
		{"confirm", req{method: "POST", path: "/gates/checkout-v2/kill", form: url.Values{"reason": {"x"}}}, 200},
		{"result", req{method: "POST", path: "/gates/search-v3/kill", form: kill}, 200},
		{"bad form", req{method: "POST", path: "/gates/checkout-v2/percent", form: url.Values{"percent": {"x"}}}, 400},
		{"unknown", req{method: "GET", path: "/gates/smars"}, 404},
		{"method", req{method: "GET", path: "/gates/checkout-v2/kill"}, 405},
		{"unauthorized", req{method: "GET", path: "/", noAuth: true}, 403},
		{"cross-origin", req{method: "POST", path: "/gates/legacy-ui/kill", form: kill,
			header: http.Header{"Sec-Fetch-Site": {"cross-site"}}}, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := serve(t, h, c.req)
			wantStatus(t, w, c.code)
			for k, v := range want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestKillReasonIsEscaped(t *testing.T) {
	const hostile = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	const escaped = `&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;`
	reg := newRegistry(t)
	h := console.Handler(reg, authorize)
	for _, c := range []struct {
		name string
		do   func() string
	}{
		{"confirm page", func() string {
			return post(t, h, "/gates/checkout-v2/kill", url.Values{"reason": {hostile}}).Body.String()
		}},
		{"result page", func() string {
			return post(t, h, "/gates/checkout-v2/kill", url.Values{"reason": {hostile}, "confirm": {"yes"}}).Body.String()
		}},
		{"console", func() string { return get(t, h, "/").Body.String() }},
		{"gate page", func() string { return get(t, h, "/gates/checkout-v2").Body.String() }},
	} {
		body := c.do()
		if strings.Contains(body, "<script") || strings.Contains(body, "<img") {
			t.Errorf("%s: the reason is not escaped:\n%s", c.name, body)
		}
		if !strings.Contains(body, escaped) {
			t.Errorf("%s: lacks the escaped reason %q", c.name, escaped)
		}
	}
	if st := gate(t, reg, "checkout-v2").Status(); !st.Killed || st.Reason != hostile {
		t.Errorf("gate killed=%v reason %q, want the reason verbatim", st.Killed, st.Reason)
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	reg := newRegistry(t)
	h := console.Handler(reg, authorize)
	kill := url.Values{"reason": {"forged"}, "confirm": {"yes"}}
	for _, c := range []struct {
		name   string
		header http.Header
		code   int
	}{
		{"cross-site fetch", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"same-site other origin", http.Header{"Sec-Fetch-Site": {"same-site"}}, 403},
		{"foreign Origin", http.Header{"Origin": {"https://evil.example"}}, 403},
		{"same origin", http.Header{"Sec-Fetch-Site": {"same-origin"}}, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := gate(t, reg, "checkout-v2")
			g.Resume()
			w := serve(t, h, req{method: "POST", path: "/gates/checkout-v2/kill", form: kill, header: c.header})
			wantStatus(t, w, c.code)
			if killed := g.Status().Killed; killed != (c.code == 200) {
				t.Errorf("killed=%v after a %d", killed, c.code)
			}
			if c.code == 403 {
				wantBody(t, w, "console: cross-origin request refused")
			}
		})
	}
}

func TestActions(t *testing.T) {
	for _, c := range []struct {
		name, path string
		form       url.Values
		prepare    func(g *rollout.Gate)
		confirm    []string // in the confirmation page
		result     []string // in the answer to the confirmed POST
		check      func(st rollout.Status) bool
	}{
		{"kill", "/gates/checkout-v2/kill", url.Values{"reason": {" INC-42: payment errors "}}, nil,
			[]string{"<h1>Confirm: kill checkout-v2</h1>", "no key will be enabled", "It applies on this instance.",
				`<input type="hidden" name="reason" value="INC-42: payment errors">`, `action="../../gates/checkout-v2/kill"`},
			[]string{`<h1 class="done">checkout-v2 is killed (INC-42: payment errors)</h1>`, `<span class="state KILLED">KILLED</span>`},
			func(st rollout.Status) bool { return st.Killed && st.Reason == "INC-42: payment errors" }},
		{"resume", "/gates/checkout-v2/resume", url.Values{}, func(g *rollout.Gate) { g.Kill("INC-1") },
			[]string{"<h1>Confirm: resume checkout-v2</h1>", "keys are enabled at its percent again"},
			[]string{`<h1 class="done">checkout-v2 is live at 5%</h1>`},
			func(st rollout.Status) bool { return !st.Killed }},
		{"percent", "/gates/search-v3/percent", url.Values{"percent": {"12.5"}}, nil,
			[]string{"Set search-v3 to 12.5%: this stops its schedule.", `<input type="hidden" name="percent" value="12.5">`},
			[]string{`<h1 class="done">search-v3 is live at 12.5%</h1>`, "stopped by a percent set by hand"},
			func(st rollout.Status) bool { return st.Percent == 12.5 && !st.Scheduled }},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := newRegistry(t)
			h := console.Handler(reg, authorize)
			g := gate(t, reg, strings.Split(c.path, "/")[2])
			if c.prepare != nil {
				c.prepare(g)
			}
			before := g.Status()
			w := post(t, h, c.path, c.form)
			wantStatus(t, w, http.StatusOK)
			wantBody(t, w, c.confirm...)
			if st := g.Status(); st != before {
				t.Fatalf("a POST without confirm=yes changed the gate:\n%+v\nwas\n%+v", st, before)
			}
			for _, v := range []string{"", "no", "YES", "on"} {
				f := url.Values{"confirm": {v}}
				for k, vs := range c.form {
					f[k] = vs
				}
				post(t, h, c.path, f)
				if st := g.Status(); st != before {
					t.Fatalf("confirm=%q changed the gate", v)
				}
			}
			f := url.Values{"confirm": {"yes"}}
			for k, vs := range c.form {
				f[k] = vs
			}
			w = post(t, h, c.path, f)
			wantStatus(t, w, http.StatusOK)
			wantBody(t, w, c.result...)
			if st := g.Status(); !c.check(st) {
				t.Errorf("after the confirmed POST: %+v", st)
			}
		})
	}
}

func TestActionErrors(t *testing.T) {
	reg := newRegistry(t)
	h := console.Handler(reg, authorize)
	yes := func(kv ...string) url.Values {
		f := url.Values{"confirm": {"yes"}}
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	for _, c := range []struct {
		name, method, path string
		form               url.Values
		code               int
		msg                string
	}{
		{"kill without reason", "POST", "/gates/checkout-v2/kill", yes(), 400, "console: a kill needs a reason"},
		{"blank reason", "POST", "/gates/checkout-v2/kill", yes("reason", "  \t "), 400, "console: a kill needs a reason"},
		{"long reason", "POST", "/gates/checkout-v2/kill", yes("reason", strings.Repeat("x", 1025)), 400, "console: reason longer than 1024 bytes"},
		{"percent not a number", "POST", "/gates/checkout-v2/percent", yes("percent", "ten"), 400, "console: percent &#34;ten&#34; is not a number"},
		{"percent out of range", "POST", "/gates/checkout-v2/percent", yes("percent", "250"), 400, "is outside [0, 100]"},
		{"percent NaN", "POST", "/gates/checkout-v2/percent", yes("percent", "NaN"), 400, "is outside [0, 100]"},
		{"percent too fine", "POST", "/gates/checkout-v2/percent", yes("percent", "0.00001"), 400, "is not a multiple of 0.0001"},
		{"unknown gate", "POST", "/gates/smars/kill", yes("reason", "x"), 404, "console: unknown gate &#34;smars&#34;"},
		{"unknown action", "POST", "/gates/checkout-v2/delete", yes(), 404, "console: unknown action &#34;delete&#34;"},
		{"body too large", "POST", "/gates/checkout-v2/kill", yes("reason", strings.Repeat("x", 70<<10)), 413, "console: body larger than 65536 bytes"},
		{"GET of an action", "GET", "/gates/checkout-v2/kill", nil, 405, "console: an action is a POST"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := serve(t, h, req{method: c.method, path: c.path, form: c.form})
			wantStatus(t, w, c.code)
			wantBody(t, w, c.msg)
			for _, g := range reg.Gates() {
				if st := g.Status(); st.Killed || st.Name == "checkout-v2" && st.Percent != 5 {
					t.Errorf("%s changed: %+v", st.Name, st)
				}
			}
		})
	}
}

func TestAuthorizeRefusal(t *testing.T) {
	reg := newRegistry(t)
	h := console.Handler(reg, authorize)
	for _, q := range []req{
		{method: "GET", path: "/", noAuth: true},
		{method: "GET", path: "/gates/checkout-v2", noAuth: true},
		{method: "POST", path: "/gates/checkout-v2/kill", form: url.Values{"reason": {"x"}, "confirm": {"yes"}}, noAuth: true},
		{method: "POST", path: "/gates/checkout-v2/kill", form: url.Values{"reason": {"x"}, "confirm": {"yes"}},
			noAuth: true, header: http.Header{"Authorization": {"Bearer guess"}}},
	} {
		w := serve(t, h, q)
		wantStatus(t, w, http.StatusForbidden)
		wantBody(t, w, "console: forbidden")
		if strings.Contains(w.Body.String(), "checkout-v2") {
			t.Errorf("%s %s: the refusal shows a gate", q.method, q.path)
		}
	}
	if gate(t, reg, "checkout-v2").Status().Killed {
		t.Error("an unauthorized POST killed the gate")
	}
}

func TestHandlerPanics(t *testing.T) {
	reg := newRegistry(t)
	for _, c := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"nil registry", func() { console.Handler(nil, authorize) }, "console: invalid config: Handler: nil registry"},
		{"nil authorize", func() { console.Handler(reg, nil) }, "Handler: nil authorize func: there is no unauthenticated mode"},
		{"nil store", func() { console.Handler(reg, authorize, console.WithFleet(nil, nil)) }, "WithFleet: nil store"},
		{"zero timeout", func() { console.Handler(reg, authorize, console.WithTimeout(0)) }, "WithTimeout(0s): must be positive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, console.ErrInvalidConfig) || !strings.Contains(err.Error(), c.msg) {
					t.Errorf("panic %v, want ErrInvalidConfig with %q", err, c.msg)
				}
			}()
			c.f()
		})
	}
	console.Handler(reg, authorize, nil, console.WithLogger(nil)) // nil means the default
}

func TestFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := fleet.NewMemoryStore()
		self := startInstance(t, store, "i-0", newRegistry(t))
		other := startInstance(t, store, "i-1", newRegistry(t))
		gone := startInstance(t, store, "i-2", newRegistry(t))
		// An instance of an older build that lacks search-v3 and vanished.
		beat, _ := json.Marshal(fleet.Instance{ID: "i-9", Build: "v1.3.0", Sent: time.Now()})
		if _, err := store.Heartbeat(t.Context(), "i-9", beat, 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		gone.stop()
		synctest.Wait()
		h := console.Handler(self.reg, authorize, console.WithFleet(store, self.s))

		w := get(t, h, "/")
		wantStatus(t, w, http.StatusOK)
		wantBody(t, w, `<section class="fleet" id="fleet">`, "This instance: <strong>i-0</strong>",
			"4 instances, 2 live, 2 not current", "2 of 4 instances are not current: see the fleet table.",
			`<td>i-0 <em>(this)</em><br><small>host-i-0</small></td>`, "<td>v1.4.2</td>",
			`<strong class="mark">STOPPED</strong>`, `<strong class="mark">VANISHED</strong>`, "<td>v1.3.0</td>")
		if n := strings.Count(w.Body.String(), `<tr class="bad">`); n != 2 {
			t.Errorf("%d instances marked bad, want 2", n)
		}

		// The other instance differs on a gate: the card says so.
		gate(t, other.reg, "legacy-ui").Kill("local experiment")
		synctest.Wait()
		w = get(t, h, "/")
		wantBody(t, w, "differs on 1 instance(s):<ul><li>i-1: killed (local experiment)</li></ul>")

		w = post(t, h, "/gates/checkout-v2/kill", url.Values{"reason": {"INC-42"}})
		wantBody(t, w, "It applies on this instance and, through the fleet store, on every instance (2 live).")

		w = post(t, h, "/gates/checkout-v2/kill", url.Values{"reason": {"INC-42"}, "confirm": {"yes"}})
		wantStatus(t, w, http.StatusOK)
		wantBody(t, w, `<h1 class="done">checkout-v2 is killed (INC-42)</h1>`, "Published as store version 1",
			"<dt>Applied</dt><dd>2: i-0 i-1 </dd>", "<dt>Lagging</dt><dd>0</dd>")
		for _, in := range []*instance{self, other} {
			if st := gate(t, in.reg, "checkout-v2").Status(); !st.Killed || st.Reason != "INC-42" {
				t.Errorf("%s: killed=%v reason %q", in.s.ID(), st.Killed, st.Reason)
			}
		}
		if st := gate(t, gone.reg, "checkout-v2").Status(); st.Killed {
			t.Error("a stopped instance applied the kill")
		}
	})
}

func TestFleetLagging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := fleet.NewMemoryStore()
		self := startInstance(t, store, "i-0", newRegistry(t))
		// i-7 heartbeats as live but never applies anything.
		beat, _ := json.Marshal(fleet.Instance{ID: "i-7", Build: "v1.4.2", Sent: time.Now()})
		if _, err := store.Heartbeat(t.Context(), "i-7", beat, time.Hour); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		h := console.Handler(self.reg, authorize, console.WithFleet(store, self.s), console.WithTimeout(2*time.Second))
		start := time.Now()
		w := post(t, h, "/gates/checkout-v2/percent", url.Values{"percent": {"20"}, "confirm": {"yes"}})
		wantStatus(t, w, http.StatusOK)
		wantBody(t, w, "<dt>Applied</dt><dd>1: i-0 </dd>", `<dt>Lagging</dt><dd class="bad">1: <strong>i-7</strong> </dd>`)
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("the answer took %v, want the timeout 2s", d)
		}
	})
}

func TestFleetDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := newRegistry(t)
		self := startInstance(t, downStore{}, "i-0", reg)
		time.Sleep(5 * time.Second) // past the syncer's stale bound
		synctest.Wait()
		h := console.Handler(reg, authorize, console.WithFleet(downStore{}, self.s))

		w := get(t, h, "/")
		wantStatus(t, w, http.StatusOK)
		wantBody(t, w, `<p class="banner" role="alert">The fleet store cannot be read (fleet: read store: `+errDown.Error()+
			`). The page shows this instance only; kill, resume and percent still work on this instance.</p>`,
			"This instance (i-0) has had no contact with the fleet store since",
			`action="./gates/checkout-v2/kill"`)
		if i, j := strings.Index(w.Body.String(), `class="banner"`), strings.Index(w.Body.String(), "<main>"); i < 0 || i > j {
			t.Error("the banner is not at the top of the page")
		}

		w = post(t, h, "/gates/checkout-v2/kill", url.Values{"reason": {"INC-9"}, "confirm": {"yes"}})
		wantStatus(t, w, http.StatusOK)
		wantBody(t, w, `<h1 class="done">checkout-v2 is killed (INC-9)</h1>`,
			"Applied on this instance only: not published to the fleet. fleet: publish: "+errDown.Error())
		if !gate(t, reg, "checkout-v2").Status().Killed {
			t.Error("the local kill did not apply while the store is down")
		}
	})
}

// TestFleetHung: while the store hangs, every store call of a request is
// cut at the timeout: the pages answer with the banner, and a kill applies
// on this instance and answers once its publish and the re-read of the
// fleet have timed out.
func TestFleetHung(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := newRegistry(t)
		h := console.Handler(reg, authorize, console.WithFleet(hungStore{}, nil), console.WithTimeout(time.Second))
		for _, c := range []struct {
			name string
			req  req
			took time.Duration
			body []string
		}{
			{"index", req{method: "GET", path: "/"}, time.Second,
				[]string{"The fleet store cannot be read (", "context deadline exceeded", `action="./gates/checkout-v2/kill"`}},
			{"gate", req{method: "GET", path: "/gates/checkout-v2"}, time.Second,
				[]string{"The fleet store cannot be read (", "<h2>History</h2>"}},
			{"confirm", req{method: "POST", path: "/gates/checkout-v2/kill", form: url.Values{"reason": {"INC-5"}}}, time.Second,
				[]string{"publishing it to the fleet will be tried, but the store cannot be read now"}},
			{"kill", req{method: "POST", path: "/gates/checkout-v2/kill", form: url.Values{"reason": {"INC-5"}, "confirm": {"yes"}}},
				2 * time.Second, []string{`<h1 class="done">checkout-v2 is killed (INC-5)</h1>`,
					"Applied on this instance only: not published to the fleet.", "context deadline exceeded"}},
		} {
			start := time.Now()
			w := serve(t, h, c.req)
			if d := time.Since(start); d != c.took {
				t.Errorf("%s: answered after %v, want %v", c.name, d, c.took)
			}
			wantStatus(t, w, http.StatusOK)
			wantBody(t, w, c.body...)
		}
		if st := gate(t, reg, "checkout-v2").Status(); !st.Killed || st.Reason != "INC-5" {
			t.Errorf("while the store hangs: killed=%v reason %q", st.Killed, st.Reason)
		}
	})
}

func TestMountedUnderPrefix(t *testing.T) {
	reg := newRegistry(t)
	mux := http.NewServeMux()
	mux.Handle("/admin/console/", http.StripPrefix("/admin/console", console.Handler(reg, authorize)))
	mux.Handle("/admin/rollout/", http.StripPrefix("/admin/rollout", rollout.Handler(reg, authorize)))

	w := get(t, mux, "/admin/console/gates/checkout-v2")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `href="../style.css"`)
	w = post(t, mux, "/admin/console/gates/checkout-v2/kill", url.Values{"reason": {"INC-3"}, "confirm": {"yes"}})
	wantStatus(t, w, http.StatusOK)
	// The JSON API beside it sees the kill.
	w = get(t, mux, "/admin/rollout/checkout-v2")
	wantStatus(t, w, http.StatusOK)
	var st rollout.Status
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || !st.Killed || st.Reason != "INC-3" {
		t.Errorf("JSON status %+v (%v)", st, err)
	}
}

func TestFleetGuardAndHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := fleet.NewMemoryStore()
		self := startInstance(t, store, "i-0", newRegistry(t))
		startInstance(t, store, "i-1", newRegistry(t))
		g := gate(t, self.reg, "checkout-v2")
		guard, err := fleet.NewGuard(store, g, fleet.WithSyncer(self.s), fleet.WithBatchInterval(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		fleettest.Run(t, guard)
		// An instance whose guard lost the store.
		beat, _ := json.Marshal(fleet.Instance{ID: "i-5", Sent: time.Now(), Guards: []fleet.GuardStatus{
			{Gate: "checkout-v2", Mode: fleet.ModeLocal, StoreError: "i/o timeout"}}})
		if _, err := store.Heartbeat(t.Context(), "i-5", beat, time.Hour); err != nil {
			t.Fatal(err)
		}

		time.Sleep(1500 * time.Millisecond) // the guard's first batch starts its test
		// Traffic through checkout-v2 at 50%: the new arm fails one call
		// in 50, the old one in 100.
		if err := g.SetPercent(50); err != nil {
			t.Fatal(err)
		}
		var n int
		fail := func(every int) func(context.Context, int) (int, error) {
			return func(context.Context, int) (int, error) {
				if n++; n%every == 0 {
					return 0, errors.New("payment declined")
				}
				return 1, nil
			}
		}
		p, err := rollout.NewPath(g, rollout.Arms[int, int]{Old: fail(100), New: fail(50)})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2000 {
			p.Run(t.Context(), fmt.Sprintf("user-%d", i), i)
		}
		time.Sleep(3 * time.Second) // batches: counts, the look, the heartbeat
		synctest.Wait()

		h := console.Handler(self.reg, authorize, console.WithFleet(store, self.s))
		w := get(t, h, "/")
		wantStatus(t, w, http.StatusOK)
		wantBody(t, w, `<dt>Fleet guard</dt><dd class="fleet-guard">judged by i-0, pooled from 1 instance<br>`,
			"look 1: z=", `<strong class="mark">GUARD LOCAL</strong>`,
			"guard of checkout-v2 judges this instance alone: i/o timeout", "judges checkout-v2 for the fleet (1 instance)")

		post(t, h, "/gates/checkout-v2/kill", url.Values{"reason": {"INC-77"}, "confirm": {"yes"}})
		time.Sleep(2 * time.Second) // the guards write their exposure data
		synctest.Wait()
		w = get(t, h, "/gates/checkout-v2")
		wantStatus(t, w, http.StatusOK)
		wantBody(t, w, "<h2>Fleet history</h2>",
			`<tr class="bad"><td>2000-01-01 00:00:04 UTC (5s ago)</td><td>kill</td><td>fleet</td><td>console@i-0 from 192.0.2.1:1234 (version 1)</td><td> killed</td><td>INC-77</td>`,
			"<td>kill</td><td>call</td><td>instance i-0</td><td>50% killed</td><td>INC-77</td>",
			"<h2>Fleet exposure</h2>", "Failed calls of the new arm, every instance", "<td>i-0</td><td>user-")
	})
}

package fleet_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/rollout"
)

var errNewArm = errors.New("test: new arm returned null")

// orders runs calls of keys order-<from>… on n's gate through a Path whose
// new arm always fails, and returns when each key was called.
func orders(t *testing.T, n *guardedNode, from, count int) map[string]time.Time {
	t.Helper()
	p, err := rollout.NewPath(n.gate(t, guarded), rollout.Arms[string, string]{
		Old: func(_ context.Context, k string) (string, error) { return k, nil },
		New: func(context.Context, string) (string, error) { return "", errNewArm },
	})
	if err != nil {
		t.Fatal(err)
	}
	at := make(map[string]time.Time, count)
	for i := from; i < from+count; i++ {
		k := fmt.Sprintf("order-%d", i)
		_, _ = p.Run(t.Context(), k, k)
		at[k] = time.Now()
		time.Sleep(time.Millisecond)
	}
	return at
}

// Three instances at 50%; the operator sets 20%, then kills the gate. The
// fleet history holds the instances' creation and both publishes, and
// answers WasEnabled for every order as each instance's own gate does; the
// exposure pools the windows' counts and failed keys of all three.
func TestFleetHistoryAndExposure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := fleet.NewMemoryStore()
		ns := []*guardedNode{
			newGuardedNode(t, store, "i0", &traffic{}),
			newGuardedNode(t, store, "i1", &traffic{}),
			newGuardedNode(t, store, "i2", &traffic{}),
		}
		synctest.Wait()
		start := time.Now()
		calls := map[string]time.Time{}
		served := map[string]*guardedNode{}
		run := func(base int) {
			for i, n := range ns {
				for k, at := range orders(t, n, base+100*i, 100) {
					calls[k], served[k] = at, n
				}
			}
		}
		run(0)
		p := newPublisher(t, store)
		if _, err := p.SetPercent(t.Context(), guarded, 20); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		run(1000)
		if _, err := p.Kill(t.Context(), guarded, "INC-42"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		run(2000)
		time.Sleep(2 * time.Second) // a batch: every Guard writes its exposure
		synctest.Wait()

		h, err := fleet.ReadHistory(t.Context(), store, guarded)
		if err != nil {
			t.Fatal(err)
		}
		// Each publish, then each instance applying it, at the same fake
		// time: the publish first.
		var kinds []string
		for _, e := range h.Entries {
			kinds = append(kinds, e.Kind+"/"+e.Source+"/"+e.Instance)
		}
		want := []string{"created//i0", "created//i1", "created//i2",
			"percent/fleet/", "percent/fleet/i0", "percent/fleet/i1", "percent/fleet/i2",
			"kill/fleet/", "kill/fleet/i0", "kill/fleet/i1", "kill/fleet/i2"}
		if fmt.Sprint(kinds) != fmt.Sprint(want) || h.Salt != guarded || h.Unreadable != 0 {
			t.Fatalf("history %q (salt %q, %d unreadable), want %q", kinds, h.Salt, h.Unreadable, want)
		}
		if e := h.Entries[7]; e.Reason != "INC-42" || e.By != "oncall@test" || e.Version != 2 {
			t.Errorf("kill entry %+v", e)
		}

		// WasEnabled from the fleet history and the hash alone matches
		// the gate of the instance that served each order, and what the
		// new arm actually did.
		wantFailed := map[string]bool{}
		for k, at := range calls {
			local := served[k].gate(t, guarded).WasEnabled(k, at)
			if got := h.WasEnabled(k, at); got != local {
				t.Errorf("%s at %v: fleet WasEnabled %v, the instance's %v", k, at.Sub(start), got, local)
			}
			if got := h.WasEnabledOn(served[k].s.ID(), k, at); got != local {
				t.Errorf("%s at %v: WasEnabledOn(%s) %v, the instance's %v", k, at.Sub(start), served[k].s.ID(), got, local)
			}
			if local {
				wantFailed[k] = true
			}
		}
		if len(wantFailed) == 0 || len(wantFailed) == len(calls) {
			t.Fatalf("%d of %d orders went through the new path: the test proves nothing", len(wantFailed), len(calls))
		}

		x, err := fleet.ReadExposure(t.Context(), store, guarded, start, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		type win struct {
			percent      float64
			killed, live bool
		}
		var ws []win
		var perWindow []int64
		for _, w := range x.Windows {
			ws = append(ws, win{w.Percent, w.Killed, w.Live})
			perWindow = append(perWindow, w.New.Error)
		}
		wantWs := []win{{50, false, true}, {20, false, true}, {0, true, false}}
		wantWs[2].percent = 20
		if fmt.Sprint(ws) != fmt.Sprint(wantWs) {
			t.Fatalf("windows %v, want %v", ws, wantWs)
		}
		var in50, in20 int64
		for k := range wantFailed {
			if calls[k].Before(x.Windows[1].From) {
				in50++
			} else {
				in20++
			}
		}
		if perWindow[0] != in50 || perWindow[1] != in20 || perWindow[2] != 0 || x.New.Error != int64(len(wantFailed)) || x.New.OK != 0 {
			t.Errorf("errors per window %v, total %+v; want [%d %d 0], %d", perWindow, x.New, in50, in20, len(wantFailed))
		}
		if len(x.Instances) != 3 {
			t.Errorf("instances %+v", x.Instances)
		}
		// Each instance samples its last 100 failures: all of them here.
		got := map[string]bool{}
		for _, f := range x.Failures {
			if f.Outcome != rollout.OutcomeError || served[f.Key] == nil || served[f.Key].s.ID() != f.Instance {
				t.Errorf("failure %+v", f)
			}
			got[f.Key] = true
		}
		if len(got) != len(wantFailed) {
			t.Errorf("%d failed keys sampled, want %d", len(got), len(wantFailed))
		}
		for k := range wantFailed {
			if !got[k] {
				t.Errorf("failed key %s not sampled", k)
			}
		}

		// The admin handler serves both, read-only.
		hd := fleet.Handler(store, func(*http.Request) bool { return true })
		for _, c := range []struct {
			path string
			code int
		}{
			{"/gates/" + guarded + "/history", 200},
			{"/gates/" + guarded + "/exposure?from=" + start.Format(time.RFC3339Nano), 200},
			{"/gates/" + guarded + "/exposure?from=yesterday", 400},
			{"/gates/" + guarded + "/exposure?from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z", 400},
		} {
			w := httptest.NewRecorder()
			hd.ServeHTTP(w, httptest.NewRequest("GET", c.path, nil))
			if w.Code != c.code {
				t.Errorf("GET %s: %d %s, want %d", c.path, w.Code, w.Body, c.code)
			}
		}
		w := httptest.NewRecorder()
		hd.ServeHTTP(w, httptest.NewRequest("GET", "/gates/"+guarded+"/history", nil))
		var hh fleet.History
		if err := json.Unmarshal(w.Body.Bytes(), &hh); err != nil || len(hh.Entries) != len(h.Entries) {
			t.Errorf("history JSON: %v, %d entries", err, len(hh.Entries))
		}
		w = httptest.NewRecorder()
		fleet.Handler(newFaulty(store), func(*http.Request) bool { return true }).
			ServeHTTP(w, httptest.NewRequest("GET", "/gates/"+guarded+"/history", nil))
		if w.Code != http.StatusNotImplemented {
			t.Errorf("history of a store without one: %d", w.Code)
		}
	})
}

// A config's entry applies as LoadConfig applies it: only what differs
// from the previous config, and its resume lifts only its own kill.
func TestHistoryReplaysConfig(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	pct := func(p float64) *float64 { return &p }
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	h := fleet.History{Gate: "g", Salt: "g", Entries: []fleet.HistoryEntry{
		{At: at(0), Kind: rollout.EventCreated, Instance: "i0", Percent: pct(100)},
		{At: at(1), Kind: fleet.EntryConfig, Percent: pct(100), Killed: true},
		{At: at(2), Kind: rollout.EventResume},
		{At: at(3), Kind: fleet.EntryConfig, Percent: pct(100), Killed: true}, // unchanged: no new kill
		{At: at(4), Kind: rollout.EventKill},
		{At: at(5), Kind: fleet.EntryConfig, Percent: pct(100)}, // the config's resume: not its kill
		{At: at(6), Kind: fleet.EntryConfig, Percent: pct(0)},
		{At: at(7), Kind: rollout.EventResume},
	}}
	for m, want := range []bool{true, false, true, true, false, false, false, false} {
		if got := h.WasEnabled("k", at(m).Add(time.Second)); got != want {
			t.Errorf("minute %d: %v, want %v", m, got, want)
		}
	}
	if h.WasEnabled("k", at(0).Add(-time.Second)) {
		t.Error("enabled before the first entry")
	}
}

// An instance's own changes apply to it alone: a restarted instance is
// live from its creation until it applies the fleet's kill, while another
// instance's local kill leaves the rest of the fleet live.
func TestHistoryReplaysInstances(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	pct := func(p float64) *float64 { return &p }
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	h := fleet.History{Gate: "g", Salt: "g", Entries: []fleet.HistoryEntry{
		{At: at(0), Kind: rollout.EventCreated, Instance: "i0", Percent: pct(100)},
		{At: at(0), Kind: rollout.EventCreated, Instance: "i1", Percent: pct(100)},
		{At: at(1), Kind: rollout.EventKill, Source: rollout.KilledByCall, Instance: "i0", Percent: pct(100), Killed: true},
		{At: at(2), Kind: rollout.EventKill, Source: rollout.KilledByFleet},
		{At: at(3), Kind: rollout.EventCreated, Instance: "i1", Percent: pct(100)}, // i1 restarts
		{At: at(4), Kind: rollout.EventKill, Source: rollout.KilledByFleet, Instance: "i1", Percent: pct(100), Killed: true},
	}}
	for m, want := range []bool{true, true, false, true, false} {
		if got := h.WasEnabled("k", at(m).Add(time.Second)); got != want {
			t.Errorf("minute %d: %v, want %v", m, got, want)
		}
	}
}

// A fleet kill spreads: each instance applies it at its own moment, as its
// Guard reports. WasEnabledOn answers for the instance that served a key
// by its own changes where it reported them, by the publishes where it
// did not (or restarted), and false before its creation; WasEnabled is
// true while some instance has not applied it.
func TestHistoryWasEnabledOn(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	pct := func(p float64) *float64 { return &p }
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	h := fleet.History{Gate: "g", Salt: "g", Entries: []fleet.HistoryEntry{
		{At: ms(0), Kind: rollout.EventCreated, Instance: "i0", Percent: pct(100)},
		{At: ms(0), Kind: rollout.EventCreated, Instance: "i1", Percent: pct(100)},
		{At: ms(1000), Kind: rollout.EventPercent, Source: rollout.KilledByFleet, Percent: pct(100)},
		{At: ms(1500), Kind: rollout.EventCreated, Instance: "i3", Percent: pct(100)},
		{At: ms(2000), Kind: rollout.EventKill, Source: rollout.KilledByFleet},
		{At: ms(2100), Kind: rollout.EventKill, Source: rollout.KilledByFleet, Instance: "i0", Percent: pct(100), Killed: true},
		{At: ms(2300), Kind: rollout.EventKill, Source: rollout.KilledByFleet, Instance: "i1", Percent: pct(100), Killed: true},
		{At: ms(2400), Kind: rollout.EventKill, Source: rollout.KilledByFleet, Instance: "i3", Percent: pct(100), Killed: true},
		// i4 restarts after the kill and applies it a little later.
		{At: ms(2500), Kind: rollout.EventCreated, Instance: "i4", Percent: pct(100)},
		{At: ms(2510), Kind: rollout.EventKill, Source: rollout.KilledByFleet, Instance: "i4", Percent: pct(100), Killed: true},
		{At: ms(3000), Kind: rollout.EventResume, Source: rollout.KilledByFleet},
	}}
	h.Entries = append([]fleet.HistoryEntry{{At: ms(0), Kind: rollout.EventCreated, Instance: "i4", Percent: pct(100)}}, h.Entries...)
	for _, tc := range []struct {
		instance string
		at       int // ms after t0
		want     bool
	}{
		{"i0", 500, true},
		{"i0", 2050, true},  // the kill published, not yet applied on i0
		{"i0", 2150, false}, // applied
		{"i1", 2200, true},  // applied on i0, not yet on i1
		{"i1", 2300, false},
		{"i1", 3500, true}, // the resume, after i1's last report
		{"i2", 500, false}, // reports nothing: no percent published yet
		{"i2", 1200, true}, // by the fleet's percent
		{"i2", 2050, false},
		{"i3", 1200, false}, // before its creation
		{"i3", 2200, true},
		{"", 1200, true}, // an instance that reports nothing
		{"", 2200, false},
		{"i4", 1200, true},
		{"i4", 2200, false}, // between its processes, the kill applies
		{"i4", 2505, true},  // its new process is live until it applies it
		{"i4", 2600, false},
	} {
		if got := h.WasEnabledOn(tc.instance, "k", ms(tc.at)); got != tc.want {
			t.Errorf("WasEnabledOn(%q, k, +%dms) = %v, want %v", tc.instance, tc.at, got, tc.want)
		}
	}
	// Some instance was live while the kill spread.
	for at, want := range map[int]bool{1200: true, 2200: true, 2350: true, 2450: false, 2505: true, 2600: false, 3500: true} {
		if got := h.WasEnabled("k", ms(at)); got != want {
			t.Errorf("WasEnabled(k, +%dms) = %v, want %v", at, got, want)
		}
	}
}

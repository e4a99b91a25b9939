package redisfleet_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet/internal/redistest"
	"github.com/blastradius/blastradius/rollout"
)

// The HistoryStore contract, on the memory store and on Redis alike:
// entries come back oldest first and as written, per gate; no history is
// empty and no error; the last fleet.MaxHistory are kept; concurrent
// appends are all kept.
func TestHistoryStoreContract(t *testing.T) {
	srv := redistest.StartT(t)
	for name, s := range map[string]fleet.HistoryStore{
		"memory": fleet.NewMemoryStore(),
		"redis":  newStore(t, srv.Addr),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			if h, err := s.History(ctx, "a"); err != nil || len(h) != 0 {
				t.Fatalf("no history: %q, %v", h, err)
			}
			odd := []byte("x y\n\x00{\"z\"}")
			for _, w := range []struct{ gate, entry string }{{"a", "1"}, {"b", "b1"}, {"a", string(odd)}, {"a", "3"}} {
				if err := s.AppendHistory(ctx, w.gate, []byte(w.entry)); err != nil {
					t.Fatal(err)
				}
			}
			if got := historyOf(t, s, "a"); !slices.Equal(got, []string{"1", string(odd), "3"}) {
				t.Errorf("history of a = %q", got)
			}
			if got := historyOf(t, s, "b"); !slices.Equal(got, []string{"b1"}) {
				t.Errorf("history of b = %q", got)
			}

			for i := range fleet.MaxHistory + 5 {
				if err := s.AppendHistory(ctx, "c", []byte(fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			got := historyOf(t, s, "c")
			if len(got) != fleet.MaxHistory || got[0] != "5" || got[len(got)-1] != fmt.Sprint(fleet.MaxHistory+4) {
				t.Errorf("history of c: %d entries, %q … %q; want the last %d", len(got), got[0], got[len(got)-1], fleet.MaxHistory)
			}

			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := range 50 {
						if err := s.AppendHistory(ctx, "d", fmt.Appendf(nil, "%d-%d", w, i)); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			got = historyOf(t, s, "d")
			if len(got) != 200 {
				t.Fatalf("%d entries of 200 concurrent appends", len(got))
			}
			next := make([]int, 4) // each writer's entries in its order
			for _, e := range got {
				var w, i int
				if _, err := fmt.Sscanf(e, "%d-%d", &w, &i); err != nil || i != next[w] {
					t.Fatalf("entry %q out of its writer's order", e)
				}
				next[w]++
			}
		})
	}
}

func historyOf(t *testing.T, s fleet.HistoryStore, gate string) []string {
	t.Helper()
	h, err := s.History(t.Context(), gate)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(h))
	for i, e := range h {
		out[i] = string(e)
	}
	return out
}

// The history of a fleet on Redis: two guarded instances, the fleet guard
// kills the gate. The fleet history holds the instances' creations, the
// guard's verdict with its numbers, the kill it published and the moment
// each instance applied it; each instance's entries answer WasEnabled for
// every key as its own gate does; the exposure pools both instances.
func TestFleetHistoryOnRedis(t *testing.T) {
	srv := redistest.StartT(t)
	ns := []*guardedNode{newGuardedNode(t, srv.Addr, "i0", nil), newGuardedNode(t, srv.Addr, "i1", nil)}
	start := time.Now()
	for _, n := range ns {
		n.failEvery.Store(10)
	}
	waitFor(t, 10*time.Second, "the fleet kill", func() bool {
		return ns[0].gate(t, "checkout-v2").Status().Killed && ns[1].gate(t, "checkout-v2").Status().Killed
	})
	for _, n := range ns {
		n.stopTraffic()
	}
	store := newStore(t, srv.Addr)
	var h fleet.History
	waitFor(t, 5*time.Second, "both instances' kills in the fleet history", func() bool {
		var err error
		if h, err = fleet.ReadHistory(t.Context(), store, "checkout-v2"); err != nil {
			t.Fatal(err)
		}
		applied := 0
		for _, e := range h.Entries {
			if e.Kind == rollout.EventKill && e.Instance != "" {
				applied++
			}
		}
		return applied == len(ns)
	})
	var kinds []string
	for _, e := range h.Entries {
		kinds = append(kinds, e.Kind+"/"+e.Instance)
		switch e.Kind {
		case fleet.EntryVerdict:
			if !strings.Contains(e.Reason, "fleet guard: new") || e.Counts == nil || e.Instances != 2 || !strings.HasPrefix(e.By, "fleet-guard@") {
				t.Errorf("verdict entry %+v", e)
			}
		}
	}
	slices.Sort(kinds)
	if want := []string{"created/i0", "created/i1", "kill/", "kill/i0", "kill/i1", "verdict/"}; !slices.Equal(kinds, want) {
		t.Errorf("history kinds %q, want %q", kinds, want)
	}
	// Every key, at times before and after the kill, per instance.
	end := time.Now()
	wrong := 0
	for _, n := range ns {
		own := fleet.History{Gate: h.Gate, Salt: h.Salt}
		for _, e := range h.Entries {
			if e.Instance == n.id {
				own.Entries = append(own.Entries, e)
			}
		}
		g := n.gate(t, "checkout-v2")
		for i := range 2000 {
			key := fmt.Sprintf("k-%d", i)
			at := start.Add(time.Duration(i) * end.Sub(start) / 2000)
			if own.WasEnabled(key, at) != g.WasEnabled(key, at) {
				wrong++
			}
		}
	}
	if wrong != 0 {
		t.Errorf("%d answers of the fleet history differ from the instances' own", wrong)
	}
	x, err := fleet.ReadExposure(t.Context(), store, "checkout-v2", start.Add(-time.Minute), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, n := range ns {
		c := n.gate(t, "checkout-v2").Counts()
		sum += c.New.Calls
	}
	if got := x.New.OK + x.New.Error + x.New.Invalid + x.New.Panic + x.New.Timeout; len(x.Instances) != 2 || got != sum || len(x.Failures) == 0 {
		t.Errorf("exposure: %d instances, %d new-arm calls (want %d), %d failures", len(x.Instances), got, sum, len(x.Failures))
	}
}

// While Redis hangs, the history can neither be read nor appended: the
// calls fail within their deadline, and an operator's kill still applies
// once Redis answers; nothing written before the hang is lost.
func TestHistoryWhileRedisHangs(t *testing.T) {
	srv := redistest.StartT(t)
	s := newStore(t, srv.Addr)
	if err := s.AppendHistory(t.Context(), "g", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	start := time.Now()
	_, rerr := s.History(ctx, "g")
	aerr := s.AppendHistory(ctx, "g", []byte("during"))
	cancel()
	if rerr == nil || aerr == nil || time.Since(start) > 2*time.Second {
		t.Errorf("during the hang: read %v, append %v, after %v", rerr, aerr, time.Since(start))
	}
	if err := srv.Continue(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the history again", func() bool {
		got, err := s.History(t.Context(), "g")
		return err == nil && len(got) >= 1 && string(got[0]) == "before"
	})
}

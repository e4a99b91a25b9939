package rollout_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/rollout"
)

// eventSummary is an Event without its time, for comparison.
func eventSummary(e rollout.Event) string {
	return fmt.Sprintf("%d %s %s %q %v %v", e.Seq, e.Kind, e.Source, e.Reason, e.Percent, e.Killed)
}

func TestHistoryRecordsEveryChange(t *testing.T) {
	clk := fakeclock.New()
	t0 := clk.Now()
	g, err := rollout.New("checkout-v2", rollout.WithClock(clk.Now), rollout.WithGuard(),
		rollout.WithSchedule(rollout.Step{Percent: 1, Hold: time.Hour}, rollout.Step{Percent: 5}))
	if err != nil {
		t.Fatal(err)
	}
	g.Status() // before the hold: no promotion, no event
	clk.Advance(time.Hour)
	rollout.Record(g, rollout.VariantNew, rollout.OutcomeOK, false, 500) // the guard allows the promotion
	rollout.Record(g, rollout.VariantOld, rollout.OutcomeOK, false, 500)
	g.Status() // promotes to 5%
	clk.Advance(time.Minute)
	for i := range 10_000 {
		g.Enabled(fmt.Sprint("user-", i)) // records nothing
	}
	rollout.Record(g, rollout.VariantNew, rollout.OutcomePanic, false, 1) // the guard trips
	clk.Advance(time.Minute)
	g.Resume()
	clk.Advance(time.Minute)
	if err := g.SetPercent(20); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	g.Kill("INC-7")
	g.Kill("again") // no change, no event
	reg, _ := rollout.NewRegistry()
	if err := reg.Register(g); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, err := reg.LoadConfig(strings.NewReader(`{"version":"1","gates":[{"name":"checkout-v2","percent":30}]}`)); err != nil {
		t.Fatal(err)
	}

	got := g.History()
	want := []string{
		`0 created  "" 1 false`,
		`1 step schedule "" 5 false`,
		`2 kill guard "new arm panics: 1 in 501 calls (limit 1)" 5 true`,
		`3 resume call "" 5 false`,
		`4 percent call "" 20 false`,
		`5 kill call "INC-7" 20 true`,
		`6 percent config "" 30 true`,
	}
	wantAt := []time.Duration{0, time.Hour, 61 * time.Minute, 62 * time.Minute, 63 * time.Minute, 64 * time.Minute, 65 * time.Minute}
	if len(got) != len(want) {
		t.Fatalf("history has %d events, want %d: %+v", len(got), len(want), got)
	}
	for i, e := range got {
		if s := eventSummary(e); s != want[i] {
			t.Errorf("event %d = %s, want %s", i, s, want[i])
		}
		if !e.At.Equal(t0.Add(wantAt[i])) {
			t.Errorf("event %d at %v, want %v", i, e.At.Sub(t0), wantAt[i])
		}
	}
}

func TestHistoryIsBounded(t *testing.T) {
	clk := fakeclock.New()
	g, _ := rollout.New("g", rollout.WithClock(clk.Now))
	const changes = 300
	for i := range changes {
		clk.Advance(time.Second)
		if err := g.SetPercent(float64(i%100) + 1); err != nil {
			t.Fatal(err)
		}
	}
	h := g.History()
	if len(h) != rollout.HistorySize {
		t.Fatalf("history holds %d events, want %d", len(h), rollout.HistorySize)
	}
	if first, last := h[0].Seq, h[len(h)-1].Seq; first != changes+1-rollout.HistorySize || last != changes {
		t.Errorf("history holds events %d to %d, want %d to %d", first, last, changes+1-rollout.HistorySize, changes)
	}
	for i := 1; i < len(h); i++ {
		if h[i].Seq != h[i-1].Seq+1 || h[i].At.Before(h[i-1].At) {
			t.Fatalf("events %d and %d out of order: %+v, %+v", i-1, i, h[i-1], h[i])
		}
	}
	// Before the oldest retained event nothing is known: false.
	if g.WasEnabled("anyone", h[0].At.Add(-time.Nanosecond)) {
		t.Error("WasEnabled answered true before the retained history")
	}
}

func TestHistoryClampsAClockThatGoesBack(t *testing.T) {
	clk := fakeclock.New()
	g, _ := rollout.New("g", rollout.WithClock(clk.Now))
	t0 := clk.Now()
	clk.Advance(-time.Hour)
	_ = g.SetPercent(10)
	if h := g.History(); !h[1].At.Equal(t0) {
		t.Errorf("event after a clock step back at %v, want %v", h[1].At, t0)
	}
}

func TestWasEnabled(t *testing.T) {
	clk := fakeclock.New()
	t0 := clk.Now()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	g, _ := rollout.New("orders-v2", rollout.WithClock(clk.Now), rollout.WithPercent(10))
	clk.Set(at(10))
	_ = g.SetPercent(50)
	clk.Set(at(20))
	g.Kill("INC-9")
	clk.Set(at(30))
	g.Resume()
	clk.Set(at(40))
	_ = g.SetPercent(100)
	clk.Set(at(50))
	_ = g.SetPercent(0)

	// Keys by bucket: lo is in at 10%, mid only at 50%, hi only at 100%.
	var lo, mid, hi string
	for i := 0; lo == "" || mid == "" || hi == ""; i++ {
		k := fmt.Sprint("order-", i)
		switch b := rollout.Bucket("orders-v2", k); {
		case b < 100_000:
			lo = k
		case b >= 200_000 && b < 500_000:
			mid = k
		case b >= 600_000:
			hi = k
		}
	}
	cases := []struct {
		key  string
		at   time.Time
		want bool
	}{
		{lo, t0.Add(-time.Nanosecond), false}, // before the gate
		{lo, at(0), true},
		{mid, at(5), false},
		{lo, at(10).Add(-time.Nanosecond), true},
		{mid, at(10), true}, // a change holds from its time on
		{hi, at(15), false},
		{lo, at(20), false}, // killed
		{mid, at(25), false},
		{mid, at(30), true}, // resumed at 50%
		{hi, at(39), false},
		{hi, at(40), true},
		{lo, at(50), false},
		{lo, at(500), false},
	}
	for _, c := range cases {
		if got := g.WasEnabled(c.key, c.at); got != c.want {
			t.Errorf("WasEnabled(%s, +%v) = %v, want %v", c.key, c.at.Sub(t0), got, c.want)
		}
	}
}

// WasEnabled(key, t) is Enabled(key) on a gate that replayed the same
// history up to t: for random histories, keys and times.
func TestWasEnabledReplaysHistory(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 2))
	for round := range 50 {
		clk := fakeclock.New()
		g, _ := rollout.New("orders-v2", rollout.WithClock(clk.Now), rollout.WithPercent(float64(rng.IntN(101))))
		for range rng.IntN(40) {
			clk.Advance(time.Duration(rng.IntN(3)) * time.Second) // several changes may share a time
			switch rng.IntN(3) {
			case 0:
				_ = g.SetPercent(float64(rng.IntN(1_000_001)) / 1e4)
			case 1:
				g.Kill("random")
			case 2:
				g.Resume()
			}
		}
		h := g.History()
		end := clk.Now().Add(time.Second)
		for range 200 {
			at := h[0].At.Add(-time.Second + time.Duration(rng.Int64N(int64(end.Sub(h[0].At)+time.Second))))
			key := fmt.Sprint("order-", rng.IntN(1_000_000))
			replay, _ := rollout.New("orders-v2", rollout.WithPercent(h[0].Percent))
			live := !at.Before(h[0].At)
			for _, e := range h[1:] {
				if e.At.After(at) {
					break
				}
				switch e.Kind {
				case rollout.EventPercent:
					_ = replay.SetPercent(e.Percent)
				case rollout.EventKill:
					replay.Kill(e.Reason)
				case rollout.EventResume:
					replay.Resume()
				}
			}
			want := live && replay.Enabled(key)
			if got := g.WasEnabled(key, at); got != want {
				t.Fatalf("round %d: WasEnabled(%s, %v) = %v, replay says %v; history %+v", round, key, at, got, want, h)
			}
		}
	}
}

// BenchmarkWasEnabled prices naming affected keys after the fact, on a
// full history.
func BenchmarkWasEnabled(b *testing.B) {
	clk := fakeclock.New()
	t0 := clk.Now()
	g, _ := rollout.New("orders-v2", rollout.WithClock(clk.Now))
	for i := range rollout.HistorySize {
		clk.Advance(time.Second)
		_ = g.SetPercent(float64(i%100 + 1))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sink = g.WasEnabled(benchKeys[i&1023], t0.Add(time.Duration(i%300)*time.Second))
		i++
	}
}

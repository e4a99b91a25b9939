package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/rollout"
)

// orderArms are a lookup whose new arm returns an invalid (negative) result
// for orders whose number ends in 7 and an error for those ending in 3.
var orderArms = rollout.Arms[string, int]{
	Old: func(context.Context, string) (int, error) { return 1, nil },
	New: func(_ context.Context, k string) (int, error) {
		switch k[len(k)-1] {
		case '7':
			return -1, nil
		case '3':
			return 0, errors.New("lookup failed")
		}
		return 1, nil
	},
	Validate: func(v int) error {
		if v < 0 {
			return errors.New("negative")
		}
		return nil
	},
}

func TestExposureReport(t *testing.T) {
	clk := fakeclock.New()
	t0 := clk.Now()
	g, _ := rollout.New("orders-v2", rollout.WithClock(clk.Now), rollout.WithPercent(10))
	p := path(t, g, orderArms)
	ctx := context.Background()
	// want counts what each window's calls of the new arm should record,
	// and sampled the failures, computed from the hash.
	var want [3]rollout.OutcomeCounts
	var failures []rollout.Failure
	serve := func(w int, from, to int) {
		for i := from; i < to; i++ {
			k := fmt.Sprint("order-", i)
			clk.Advance(time.Millisecond)
			enabled := g.Enabled(k)
			_, _ = p.Run(ctx, k, k)
			if !enabled {
				continue
			}
			switch k[len(k)-1] {
			case '7':
				want[w].Invalid++
				failures = append(failures, rollout.Failure{Key: k, Outcome: rollout.OutcomeInvalid, At: clk.Now()})
			case '3':
				want[w].Error++
				failures = append(failures, rollout.Failure{Key: k, Outcome: rollout.OutcomeError, At: clk.Now()})
			default:
				want[w].OK++
			}
		}
	}
	serve(0, 0, 300)
	clk.Advance(time.Minute)
	_ = g.SetPercent(50)
	serve(1, 300, 600)
	clk.Advance(time.Minute)
	g.Kill("INC-14")
	serve(2, 600, 900)

	rep := g.Exposure(t0, clk.Now())
	if len(rep.Windows) != 3 {
		t.Fatalf("%d windows, want 3: %+v", len(rep.Windows), rep.Windows)
	}
	for i, w := range rep.Windows {
		if w.New != want[i] {
			t.Errorf("window %d: new arm %+v, want %+v", i, w.New, want[i])
		}
	}
	if w := rep.Windows; w[0].Percent != 10 || !w[0].Live || w[1].Percent != 50 || !w[1].Live ||
		!w[2].Killed || w[2].Live || !w[2].To.IsZero() || !w[0].To.Equal(w[1].From) || w[2].Event.Reason != "INC-14" {
		t.Errorf("windows = %+v", w)
	}
	if want[0].Invalid == 0 || want[1].Error == 0 || want[2] != (rollout.OutcomeCounts{}) {
		t.Fatalf("the keys do not exercise the test: %+v", want)
	}
	if len(failures) > rollout.MaxFailureSamples {
		failures = failures[len(failures)-rollout.MaxFailureSamples:]
	}
	if fmt.Sprint(rep.Failures) != fmt.Sprint(failures) {
		t.Errorf("failures =\n%v\nwant\n%v", rep.Failures, failures)
	}
	for _, f := range rep.Failures {
		if !g.WasEnabled(f.Key, f.At) {
			t.Errorf("failure %+v: WasEnabled says the key was not routed to the new path", f)
		}
	}

	// A range inside the second window reports it whole, and only the
	// failures in the range.
	mid := rep.Windows[1].From.Add(time.Millisecond * 150)
	sub := g.Exposure(mid, mid.Add(10*time.Millisecond))
	if len(sub.Windows) != 1 || sub.Windows[0].New != want[1] {
		t.Errorf("sub-range windows = %+v", sub.Windows)
	}
	for _, f := range sub.Failures {
		if f.At.Before(mid) || f.At.After(mid.Add(10*time.Millisecond)) {
			t.Errorf("sub-range failure outside the range: %+v", f)
		}
	}

	var back rollout.Report
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &back); err != nil || len(back.Windows) != 3 || back.Windows[1].New != want[1] ||
		len(back.Failures) != len(rep.Failures) || !strings.Contains(string(data), `"outcome":"invalid"`) {
		t.Errorf("JSON round trip: %v, %s", err, data)
	}
}

func TestExposureKeepsTheLastFailures(t *testing.T) {
	clk := fakeclock.New()
	g, _ := rollout.New("orders-v2", rollout.WithClock(clk.Now), rollout.WithPercent(100))
	p := path(t, g, orderArms)
	for i := range 3 * rollout.MaxFailureSamples {
		clk.Advance(time.Second)
		k := fmt.Sprintf("order-%d3", i)
		_, _ = p.Run(context.Background(), k, k)
	}
	rep := g.Exposure(time.Time{}, clk.Now())
	if len(rep.Failures) != rollout.MaxFailureSamples {
		t.Fatalf("%d failures kept, want %d", len(rep.Failures), rollout.MaxFailureSamples)
	}
	if first := rep.Failures[0].Key; first != fmt.Sprintf("order-%d3", 2*rollout.MaxFailureSamples) {
		t.Errorf("oldest kept failure %s, want the %dth", first, 2*rollout.MaxFailureSamples)
	}
	if rep.Windows[0].New.Error != 3*rollout.MaxFailureSamples {
		t.Errorf("window counts %+v", rep.Windows[0].New)
	}
}

func TestExposureShadowMismatch(t *testing.T) {
	clk := fakeclock.New()
	g, _ := rollout.New("orders-v2", rollout.WithClock(clk.Now), rollout.WithPercent(100))
	p := path(t, g, rollout.Arms[string, int]{Old: intArm, New: func(context.Context, string) (int, error) { return 7, nil }})
	_, _ = p.Shadow(context.Background(), "order-1", "order-1")
	rep := g.Exposure(clk.Now(), clk.Now())
	if len(rep.Failures) != 1 || rep.Failures[0] != (rollout.Failure{Key: "order-1", Outcome: rollout.OutcomeMismatch, At: clk.Now()}) {
		t.Errorf("failures = %+v", rep.Failures)
	}
	if w := rep.Windows; len(w) != 1 || w[0].New != (rollout.OutcomeCounts{OK: 1, Mismatches: 1}) {
		t.Errorf("windows = %+v", w)
	}
}

func TestExposurePartialHistory(t *testing.T) {
	clk := fakeclock.New()
	t0 := clk.Now()
	g, _ := rollout.New("g", rollout.WithClock(clk.Now))
	if g.Exposure(t0, t0).Partial {
		t.Error("a full history reported partial")
	}
	for range rollout.HistorySize {
		clk.Advance(time.Second)
		_ = g.SetPercent(1)
	}
	if rep := g.Exposure(t0, clk.Now()); !rep.Partial || len(rep.Windows) != rollout.HistorySize {
		t.Errorf("partial = %v, %d windows", rep.Partial, len(rep.Windows))
	}
}

// Calls, changes and reports at once: no race, and the windows' counts add
// up to the gate's, none lost or counted twice.
func TestExposureConcurrent(t *testing.T) {
	clk := fakeclock.New()
	g, _ := rollout.New("orders-v2", rollout.WithClock(clk.Now), rollout.WithPercent(50))
	p := path(t, g, orderArms)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Sprint("order-", w, "-", i)
				_, _ = p.Run(context.Background(), k, k)
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			clk.Advance(time.Millisecond)
			switch i % 3 {
			case 0:
				g.Kill("flap")
			case 1:
				g.Resume()
			case 2:
				_ = g.SetPercent(float64(i % 100))
			}
			_ = g.Exposure(time.Time{}, clk.Now())
			_ = g.History()
			_ = g.WasEnabled("order-1", clk.Now())
		}
	})
	wg.Wait()
	rep := g.Exposure(time.Time{}, clk.Now())
	var total int64
	for _, w := range rep.Windows {
		total += w.New.OK + w.New.Error + w.New.Invalid
	}
	if total != g.Counts().New.Calls {
		t.Errorf("windows count %d calls of the new arm, the gate %d", total, g.Counts().New.Calls)
	}
}

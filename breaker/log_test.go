package breaker_test

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/logbudget"
)

// cycle opens b, waits out the open duration (1s) and closes it again.
func cycle(b *breaker.Breaker) {
	_ = b.Do(context.Background(), fail)
	time.Sleep(2 * time.Second)
	_ = b.Do(context.Background(), ok)
}

// TestTransitionsLogThroughSharedBudget: a breaker given a budgeted logger
// logs its transitions through that budget: opening at Warn, half-open and
// the recovery to closed at Info, each message within its own limit, and
// the budget summarises what it suppressed.
func TestTransitionsLogThroughSharedBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out logtest.Buffer
		budget, err := logbudget.New(out.Handler(), logbudget.WithLimit(2))
		if err != nil {
			t.Fatal(err)
		}
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenDuration(time.Second),
			breaker.WithLogger(slog.New(budget)))
		for range 3 {
			cycle(b)
		}
		budget.Flush(context.Background())
		lines := out.Lines()
		transition := []string{
			`level=WARN msg="breaker: opened" breaker=test from=closed to=open`,
			`level=INFO msg="breaker: half-open" breaker=test from=open to=half-open`,
			`level=INFO msg="breaker: closed" breaker=test from=half-open to=closed`,
		}
		if want := append(slices.Clone(transition), transition...); len(lines) < 6 || !slices.Equal(lines[:6], want) {
			t.Fatalf("log:\n%s\nwant first:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
		summaries := slices.Sorted(slices.Values(lines[6:]))
		want := []string{
			`level=INFO msg="log budget: records suppressed" message="breaker: closed" suppressed=1`,
			`level=INFO msg="log budget: records suppressed" message="breaker: half-open" suppressed=1`,
			`level=WARN msg="log budget: records suppressed" message="breaker: opened" suppressed=1`,
		}
		if !slices.Equal(summaries, want) {
			t.Fatalf("summaries:\n%s\nwant:\n%s", strings.Join(summaries, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestTransitionsLogThroughOwnBudget: given a logger without a budget, a
// breaker logs through a budget of its own with logbudget's defaults (10
// records per message per minute), counted on its meter provider; the
// per-host breakers of a Transport share one.
func TestTransitionsLogThroughOwnBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out logtest.Buffer
		reader := metrictest.New(t)
		tr := mustTransport(t, &fakeBase{respond: always(http.StatusInternalServerError)},
			breaker.WithConsecutiveFailures(1), breaker.WithOpenDuration(time.Hour),
			breaker.WithLogger(slog.New(out.Handler())), breaker.WithMeterProvider(reader))
		for i := range 12 { // 12 hosts open within the minute
			req, _ := http.NewRequest(http.MethodGet, "http://"+string(rune('a'+i))+".test/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
		}
		lines := out.Lines()
		if len(lines) != 10 {
			t.Fatalf("%d lines, want 10:\n%s", len(lines), strings.Join(lines, "\n"))
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, `level=WARN msg="breaker: opened" breaker=`) {
				t.Fatalf("line %q", l)
			}
		}
		if got := reader.Sum(logbudget.SuppressedMetric); got != 2 {
			t.Fatalf("%s = %d, want 2", logbudget.SuppressedMetric, got)
		}
	})
}

package rollout_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/logbudget"
	"github.com/blastradius/blastradius/rollout"
)

// mismatches makes n Shadow mismatches on g.
func mismatches(t *testing.T, g *rollout.Gate, n int) {
	t.Helper()
	p := path(t, g, rollout.Arms[string, *account]{Old: okArm("a"), New: okArm("b")})
	for range n {
		_, _ = p.Shadow(context.Background(), "u", "u")
	}
}

// TestSharedLogBudget: a logger whose handler is a *logbudget.Handler is one
// budget for every gate and registry given it, and its one counter counts
// what it suppressed.
func TestSharedLogBudget(t *testing.T) {
	var logs logtest.Buffer
	budgetMetrics := metrictest.New(t)
	budget, err := logbudget.New(slog.NewTextHandler(&logs, nil), logbudget.WithMeterProvider(budgetMetrics))
	if err != nil {
		t.Fatal(err)
	}
	shared := rollout.WithLogger(slog.New(budget))
	gateMetrics := metrictest.New(t)
	a, _ := rollout.New("a", rollout.WithPercent(100), shared, rollout.WithMeterProvider(gateMetrics))
	b, _ := rollout.New("b", rollout.WithPercent(100), shared, rollout.WithMeterProvider(gateMetrics))
	reg, _ := rollout.NewRegistry(shared, rollout.WithMeterProvider(gateMetrics))
	mismatches(t, a, 1000)
	mismatches(t, b, 1000)
	for range 20 {
		_, _ = reg.LoadConfig(strings.NewReader("{"))
	}

	if n := strings.Count(logs.String(), "shadow mismatch"); n != 10 {
		t.Errorf("%d mismatch lines for 2000 mismatches on two gates, want 10: one budget", n)
	}
	if n := strings.Count(logs.String(), "the previous config stays in force"); n != 10 {
		t.Errorf("%d config-rejected lines for 20 rejections, want 10", n)
	}
	if got := budgetMetrics.Sum(logbudget.SuppressedMetric); got != 2000-10+20-10 {
		t.Errorf("%s = %d, want %d", logbudget.SuppressedMetric, got, 2000-10+20-10)
	}
	if got := gateMetrics.Sum(logbudget.SuppressedMetric); got != 0 {
		t.Errorf("the gates counted %d suppressions of their own, want 0: they use the shared budget", got)
	}
}

// TestOwnLogBudget: a logger without a budget gets one per gate, with
// logbudget's defaults (10 a minute per message) on the gate's clock, and
// its suppressions are counted through the gate's meter provider.
func TestOwnLogBudget(t *testing.T) {
	var logs logtest.Buffer
	clock := fakeclock.New()
	metrics := metrictest.New(t)
	opts := []rollout.Option{rollout.WithPercent(100), rollout.WithClock(clock.Now), rollout.WithMeterProvider(metrics),
		rollout.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))}
	a, _ := rollout.New("a", opts...)
	b, _ := rollout.New("b", opts...)
	mismatches(t, a, 1000)
	mismatches(t, b, 1000)
	if n := strings.Count(logs.String(), "shadow mismatch"); n != 20 {
		t.Errorf("%d mismatch lines for 1000 mismatches on each of two gates, want 10 per gate", n)
	}
	if got := metrics.Sum(logbudget.SuppressedMetric); got != 2*990 {
		t.Errorf("%s = %d, want %d", logbudget.SuppressedMetric, got, 2*990)
	}
	clock.Advance(time.Minute)
	mismatches(t, a, 1)
	if n := strings.Count(logs.String(), logbudget.SummaryMessage); n != 1 {
		t.Errorf("%d summaries after the minute, want 1:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "shadow mismatch"); n != 22 { // the summary names the message too
		t.Errorf("%d lines name the mismatch after the minute, want 22", n)
	}
}

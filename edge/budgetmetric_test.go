package edge_test

import (
	"log/slog"
	"testing"

	"github.com/blastradius/blastradius/edge"
)

// TestSuppressedCountsAcrossBudgets: every budget reporting to one meter
// provider adds to the one blastradius.edge.log.suppressed count.
func TestSuppressedCountsAcrossBudgets(t *testing.T) {
	m := newMetrics(t)
	a := slog.New(edge.NewLogBudget(discard{}, edge.WithLogLimit(1), edge.WithMeterProvider(m)))
	b := slog.New(edge.NewLogBudget(discard{}, edge.WithLogLimit(1), edge.WithMeterProvider(m)))
	for range 3 {
		a.Info("x")
	}
	for range 5 {
		b.Info("x")
	}
	if n := m.total(t, "blastradius.edge.log.suppressed"); n != 6 {
		t.Fatalf("suppressed = %d, want 2+4", n)
	}
	if n := m.total(t, "blastradius.edge.log.suppressed"); n != 6 {
		t.Fatalf("second collection: suppressed = %d, want 6 (cumulative)", n)
	}
	other := newMetrics(t)
	c := slog.New(edge.NewLogBudget(discard{}, edge.WithLogLimit(1), edge.WithMeterProvider(other)))
	c.Info("x")
	c.Info("x")
	if n := other.total(t, "blastradius.edge.log.suppressed"); n != 1 {
		t.Fatalf("other provider: suppressed = %d, want 1", n)
	}
}

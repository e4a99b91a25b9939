package breaker_test

import (
	"testing"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/internal/metrictest"
)

// TestStateGaugePerBreaker: every breaker on one meter provider reports its
// own state. (A callback given at the gauge's creation was dropped by the
// SDK for every breaker after the first.)
func TestStateGaugePerBreaker(t *testing.T) {
	m := metrictest.New(t)
	for _, name := range []string{"a", "b", "c"} {
		if _, err := breaker.New(name, breaker.WithMeterProvider(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		v, ok := m.Gauge("blastradius.breaker.state", "breaker.name", name)
		if !ok || v != float64(breaker.Closed) {
			t.Errorf("state gauge of %q = %v, %v; want %d (closed)", name, v, ok, breaker.Closed)
		}
	}
}

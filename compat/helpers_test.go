package compat_test

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/goleak"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/internal/metrictest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the time a new fakeclock starts at.
var t0 = fakeclock.New().Now()

const metricDecodes = "blastradius.compat.decodes"

// decodes reads blastradius.compat.decodes as "decoder|version|result" → value.
func decodes(t testing.TB, r *metrictest.Reader) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for set, v := range r.Sums(metricDecodes) {
		if n := set.Len(); n != 3 {
			t.Errorf("data point has %d attributes, want 3: %v", n, set)
		}
		get := func(k string) string {
			v, ok := set.Value(attribute.Key(k))
			if !ok {
				t.Errorf("data point without %s: %v", k, set)
			}
			return v.AsString()
		}
		out[get("compat.decoder")+"|"+get("compat.version")+"|"+get("result")] = v
	}
	return out
}

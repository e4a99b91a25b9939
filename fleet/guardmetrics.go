package fleet

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/blastradius/blastradius/internal/telemetry"
)

// Values of the result attribute of blastradius.fleet.guard.verdicts.
const (
	verdictPass = "pass"
	verdictTrip = "trip"
)

// guardMetrics are a Guard's instruments.
type guardMetrics struct {
	verdicts metric.Int64Counter
	opts     map[[2]string][]metric.AddOption // by mode and result
}

func newGuardMetrics(mp metric.MeterProvider, gd *Guard) *guardMetrics {
	m := telemetry.Meter(mp, "fleet")
	key := attribute.String("feature_flag.key", gd.gate.Name())
	gm := &guardMetrics{
		verdicts: telemetry.Counter(m, "blastradius.fleet.guard.verdicts",
			"Verdicts of a fleet guard: each look at the pooled counts (mode fleet, by the lease holder) or, while the store is unreachable, at the instance's own (mode local), and each absolute limit reached; by result (pass, trip).", "{verdict}"),
		opts: make(map[[2]string][]metric.AddOption),
	}
	for _, mode := range []string{ModeFleet, ModeLocal} {
		for _, r := range []string{verdictPass, verdictTrip} {
			gm.opts[[2]string{mode, r}] = telemetry.AddOpts(key, attribute.String("mode", mode), attribute.String("result", r))
		}
	}
	obs := telemetry.ObserveOpts(key, attribute.String(attrInstance, gd.cfg.id))
	looks, err := m.Int64ObservableGauge("blastradius.fleet.guard.looks",
		metric.WithDescription("Looks of the fleet guard's current test, on the instance that judges (the lease holder, or every instance while local)."),
		metric.WithUnit("{look}"))
	if err != nil {
		otel.Handle(err)
		return gm
	}
	z, err := m.Float64ObservableGauge("blastradius.fleet.guard.z",
		metric.WithDescription("The z statistic of the fleet guard's last look, on the instance that judges."),
		metric.WithUnit("1"))
	if err != nil {
		otel.Handle(err)
		return gm
	}
	if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := gd.Status()
		if st.Holder || st.Mode == ModeLocal {
			o.ObserveInt64(looks, int64(st.Looks), obs...)
			o.ObserveFloat64(z, st.Z, obs...)
		}
		return nil
	}, looks, z); err != nil {
		otel.Handle(err)
	}
	return gm
}

// verdict counts a look, or a trip by an absolute limit.
func (gm *guardMetrics) verdict(mode string, looked, trip bool) {
	if !looked && !trip {
		return
	}
	r := verdictPass
	if trip {
		r = verdictTrip
	}
	gm.verdicts.Add(context.Background(), 1, gm.opts[[2]string{mode, r}]...)
}

package rollout_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/blastradius/blastradius/rollout"
	"go.opentelemetry.io/otel/metric/noop"
)

// simulate runs one simulated rollout: blocks of 500 calls per arm, old
// failing with probability pOld and new with pNew, recorded straight into a
// guarded gate. It returns the number of calls per arm after which the
// guard killed the gate, or 0 if it never did within maxPerArm.
func simulate(r *rand.Rand, pOld, pNew float64, maxPerArm int, opts ...rollout.GuardOption) int {
	return simulateRatio(r, pOld, pNew, maxPerArm, 1, opts...)
}

// simulateRatio is simulate with oldPerNew calls of the old arm for each
// call of the new one, as Run sees at a gate of 100/(1+oldPerNew) percent.
func simulateRatio(r *rand.Rand, pOld, pNew float64, maxPerArm, oldPerNew int, opts ...rollout.GuardOption) int {
	g, err := rollout.New("sim", rollout.WithPercent(50), rollout.WithMeterProvider(noop.NewMeterProvider()),
		rollout.WithGuard(opts...))
	if err != nil {
		panic(err)
	}
	const block = 500
	// fails draws Binomial(calls, p) by skipping geometric gaps between
	// failures: exact, and fast for small p.
	fails := func(p float64, calls int) int64 {
		var f int64
		lq := math.Log1p(-p)
		for i := 0; ; f++ {
			i += int(math.Log(1-r.Float64())/lq) + 1
			if i > calls {
				return f
			}
		}
	}
	for n := block; n <= maxPerArm; n += block {
		fo, fn := fails(pOld, block*oldPerNew), fails(pNew, block)
		rollout.Record(g, rollout.VariantOld, rollout.OutcomeOK, false, int64(block*oldPerNew)-fo)
		rollout.Record(g, rollout.VariantOld, rollout.OutcomeError, false, fo)
		rollout.Record(g, rollout.VariantNew, rollout.OutcomeError, false, fn)
		rollout.Record(g, rollout.VariantNew, rollout.OutcomeOK, false, block-fn)
		if st, _ := g.Guard(); st.Tripped != "" {
			return n
		}
	}
	return 0
}

// TestGuardFalseAlarmRate: both arms fail 1% of the time. Over 500 seeded
// rollouts of 10,000 calls per arm (20 looks, the window sliding after
// 10), at most 2% may trip.
func TestGuardFalseAlarmRate(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const runs = 500
	trips := 0
	for range runs {
		if simulate(r, 0.01, 0.01, 10_000) > 0 {
			trips++
		}
	}
	rate := float64(trips) / runs
	t.Logf("false alarms: %d of %d rollouts (%.1f%%), both arms failing 1%%, 10,000 calls per arm", trips, runs, 100*rate)
	if rate > 0.02 {
		t.Errorf("false-alarm rate %.1f%% > 2%%", 100*rate)
	}
}

// TestGuardPower: old fails 0.1%, new 1%. At least 80% of 500 seeded
// rollouts must trip within 2,000 calls per arm.
func TestGuardPower(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const runs = 500
	trips := 0
	at := map[int]int{}
	for range runs {
		if n := simulate(r, 0.001, 0.01, 2_000); n > 0 {
			trips++
			at[n]++
		}
	}
	rate := float64(trips) / runs
	t.Logf("power: %d of %d rollouts tripped within 2,000 calls per arm (%.1f%%); tripped at 500/1000/1500/2000: %d/%d/%d/%d",
		trips, runs, 100*rate, at[500], at[1000], at[1500], at[2000])
	if rate < 0.8 {
		t.Errorf("power %.1f%% < 80%%", 100*rate)
	}
}

// TestGuardFalseAlarmRateFewFailures checks the regime where the normal
// approximation alone is anti-conservative: a low base rate (0.2%) and an
// old arm with 9× the new arm's calls (a gate at 10%), so the new arm sees
// about one failure per look. Fisher's exact test keeps the z-test honest.
func TestGuardFalseAlarmRateFewFailures(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const runs = 500
	trips := 0
	for range runs {
		if simulateRatio(r, 0.002, 0.002, 5_000, 9) > 0 {
			trips++
		}
	}
	rate := float64(trips) / runs
	t.Logf("false alarms at 0.2%% failures, old arm 9x the new: %d of %d rollouts (%.1f%%), 5,000 new calls each", trips, runs, 100*rate)
	if rate > 0.02 {
		t.Errorf("false-alarm rate %.1f%% > 2%%", 100*rate)
	}
}

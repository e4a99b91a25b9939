package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/blastradius/blastradius/rollout"
)

// The figures of the documentation of WithGuard come from these tests.
// Most run whole rollouts through Path.Run: a gate at 50% routes real keys
// by their hash, so the arms' counts at a checkpoint differ as they do in
// production. The large false-alarm test records the same traffic straight
// into the gate's counts (rollout.Record, what Run does after an arm
// returns), which is what lets it run 500 rollouts of 20,000 calls quickly
// under -race. Every rollout is seeded; no clock is read.

// simKeys are the keys of the simulated rollouts. Each rollout salts its
// gate differently, so each routes these keys afresh.
var simKeys = sync.OnceValue(func() []string {
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = fmt.Sprintf("account-%d", i)
	}
	return keys
})

var errSim = errors.New("simulated failure")

// simulateRun runs one rollout through Run: a guarded gate at percent,
// salted by seq, routes the keys in turn to an old arm that fails with
// probability pOld and a new arm that fails with probability pNew (both
// drawn from r), until the new arm has made maxNew calls or the guard has
// killed the gate. It returns the new arm's calls when the guard killed the
// gate, or 0 if it never did.
func simulateRun(r *rand.Rand, seq int, percent, pOld, pNew float64, maxNew int) int {
	g, err := rollout.New("sim", rollout.WithSalt(fmt.Sprint("sim-", seq)), rollout.WithPercent(percent),
		rollout.WithMeterProvider(noop.NewMeterProvider()), rollout.WithGuard())
	if err != nil {
		panic(err)
	}
	arm := func(p float64, calls *int) func(context.Context, string) (int, error) {
		return func(context.Context, string) (int, error) {
			*calls++
			if r.Float64() < p {
				return 0, errSim
			}
			return 0, nil
		}
	}
	var oldCalls, newCalls int
	p, err := rollout.NewPath(g, rollout.Arms[string, int]{Old: arm(pOld, &oldCalls), New: arm(pNew, &newCalls)})
	if err != nil {
		panic(err)
	}
	ctx, keys := context.Background(), simKeys()
	// A killed gate routes every key to old, so newCalls stops at the
	// kill and the gate need only be read now and then.
	for i := 1; newCalls < maxNew; i++ {
		key := keys[i%len(keys)]
		_, _ = p.Run(ctx, key, key)
		if i%256 == 0 && g.Status().Killed {
			break
		}
	}
	if !g.Status().Killed {
		return 0
	}
	return newCalls
}

// rollouts runs n seeded rollouts through simulateRun at 50% and returns
// when each tripped (0: never).
func rollouts(seed uint64, n int, pOld, pNew float64, maxNew int) []int {
	r := rand.New(rand.NewPCG(seed, seed+1))
	at := make([]int, n)
	for i := range at {
		at[i] = simulateRun(r, i, 50, pOld, pNew, maxNew)
	}
	return at
}

// recorded is rollouts through simulateRecorded.
func recorded(seed uint64, n int, pOld, pNew float64, maxNew int) []int {
	r := rand.New(rand.NewPCG(seed, seed+1))
	at := make([]int, n)
	for i := range at {
		at[i] = simulateRecorded(r, pOld, pNew, maxNew)
	}
	return at
}

// simulateRecorded is simulateRun without running arms: it records one
// rollout's calls straight into a guarded gate at 50%, in chunks of 25
// calls of the new arm and the calls of the old arm among them, every call
// routed to either arm by a fair coin (as the hash routes distinct keys at
// 50%) and failing with probability pOld or pNew. A chunk ends where the
// guard's checkpoints fall (every 500 new-arm calls), so the looks come at
// the calls they would come at through Run. It returns the new arm's calls
// when the guard killed the gate, or 0 if it never did within maxNew of
// them.
func simulateRecorded(r *rand.Rand, pOld, pNew float64, maxNew int) int {
	g, err := rollout.New("sim", rollout.WithPercent(50), rollout.WithMeterProvider(noop.NewMeterProvider()),
		rollout.WithGuard())
	if err != nil {
		panic(err)
	}
	const chunk = 25
	for newCalls := chunk; newCalls <= maxNew; newCalls += chunk {
		nOld := oldAmong(r, chunk)
		fo, fn := binomial(r, nOld, pOld), binomial(r, chunk, pNew)
		rollout.Record(g, rollout.VariantOld, rollout.OutcomeOK, false, nOld-fo)
		rollout.Record(g, rollout.VariantOld, rollout.OutcomeError, false, fo)
		rollout.Record(g, rollout.VariantNew, rollout.OutcomeError, false, fn)
		rollout.Record(g, rollout.VariantNew, rollout.OutcomeOK, false, chunk-fn)
		if st, _ := g.Guard(); st.Tripped != "" {
			return newCalls
		}
	}
	return 0
}

// oldAmong returns how many calls go to the old arm before the n-th call
// of the new arm, each call routed by a fair coin.
func oldAmong(r *rand.Rand, n int) int64 {
	var old int64
	for n > 0 {
		for b, i := r.Uint64(), 0; i < 64 && n > 0; b, i = b>>1, i+1 {
			if b&1 == 1 {
				n--
			} else {
				old++
			}
		}
	}
	return old
}

// binomial draws Binomial(n, p) by skipping geometric gaps between
// successes: exact, and fast for small p.
func binomial(r *rand.Rand, n int64, p float64) int64 {
	if p <= 0 {
		return 0
	}
	var k int64
	lq := math.Log1p(-p)
	for i := int64(0); ; k++ {
		i += int64(math.Log(1-r.Float64())/lq) + 1
		if i > n {
			return k
		}
	}
}

// share is the share of trip points in (0, n].
func share(at []int, n int) float64 {
	k := 0
	for _, a := range at {
		if a > 0 && a <= n {
			k++
		}
	}
	return float64(k) / float64(len(at))
}

// TestGuardFalseAlarmRate: both arms fail 1% of the time. Over 500 seeded
// rollouts of 10,000 new-arm calls (20 checkpoints, the window sliding
// after 10), at most 2% may trip: the bound is α = 1%, and 2% leaves room
// for the sampling error of 500 rollouts. The traffic is recorded straight
// into the gate; TestGuardFalseAlarmRateThroughRun runs fewer rollouts
// through Path.Run.
func TestGuardFalseAlarmRate(t *testing.T) {
	t.Parallel()
	rate := share(recorded(1, 500, 0.01, 0.01, 10_000), 10_000)
	t.Logf("false alarms: %.1f%% of 500 rollouts at 50%%, both arms failing 1%%, 10,000 new-arm calls", 100*rate)
	if rate > 0.02 {
		t.Errorf("false-alarm rate %.1f%% > 2%%", 100*rate)
	}
}

// TestGuardFalseAlarmRateThroughRun is TestGuardFalseAlarmRate through
// Path.Run, with keys routed by their hash: at most 2 of 100 rollouts may
// trip.
func TestGuardFalseAlarmRateThroughRun(t *testing.T) {
	t.Parallel()
	at := rollouts(1, 100, 0.01, 0.01, 10_000)
	trips := int(100 * share(at, 10_000))
	t.Logf("false alarms through Run: %d of 100 rollouts at 50%%, both arms failing 1%%, 10,000 new-arm calls", trips)
	if trips > 2 {
		t.Errorf("%d false alarms in 100 rollouts, want at most 2", trips)
	}
}

// TestGuardPower backs the power claim on WithGuard: old fails 0.1%, new
// 1%, and at least 80% of 500 seeded rollouts through Path.Run, keys routed
// 50/50 by their hash, must trip within 2,000 new-arm calls.
func TestGuardPower(t *testing.T) {
	t.Parallel()
	at := rollouts(3, 500, 0.001, 0.01, 2_000)
	rate := share(at, 2_000)
	t.Logf("power: %.1f%% of 500 rollouts at 50%% tripped within 2,000 new-arm calls (within 500/1,000/1,500: %.1f/%.1f/%.1f%%)",
		100*rate, 100*share(at, 500), 100*share(at, 1_000), 100*share(at, 1_500))
	if rate < 0.8 {
		t.Errorf("power %.1f%% < 80%%", 100*rate)
	}
}

// TestGuardFirstLook: every checkpoint gets its look. At 50%, the old arm
// has fewer than the minimum 500 calls at the first checkpoint about half
// the time; the look then waits for it rather than being skipped. Old
// fails 0.1%, new 3%, which the first look mostly catches: at least 70%
// of 500 rollouts must trip within 750 new-arm calls (when the first look
// was skipped instead, about 40% did).
func TestGuardFirstLook(t *testing.T) {
	t.Parallel()
	at := rollouts(11, 500, 0.001, 0.03, 1_000)
	rate := share(at, 750)
	t.Logf("%.1f%% of 500 rollouts at 50%% tripped within 750 new-arm calls, %.1f%% within 1,000", 100*rate, 100*share(at, 1_000))
	if rate < 0.7 {
		t.Errorf("%.1f%% tripped within 750 new-arm calls, want at least 70%%", 100*rate)
	}
}

// simulateRatio runs one rollout recorded straight into a guarded gate, in
// blocks of 500 new-arm calls and oldPerNew times as many old-arm calls, as
// Run sees at a gate of 100/(1+oldPerNew) percent: the old arm failing with
// probability pOld and the new with pNew. It returns the new arm's calls
// after which the guard killed the gate, or 0 if it never did within
// maxPerArm.
func simulateRatio(r *rand.Rand, pOld, pNew float64, maxPerArm, oldPerNew int) int {
	g, err := rollout.New("sim", rollout.WithPercent(50), rollout.WithMeterProvider(noop.NewMeterProvider()),
		rollout.WithGuard())
	if err != nil {
		panic(err)
	}
	const block = 500
	for n := block; n <= maxPerArm; n += block {
		fo, fn := binomial(r, int64(block*oldPerNew), pOld), binomial(r, block, pNew)
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

// TestGuardFigures measures the package documentation's figures over more
// rollouts than the tests above: 500 per seed, for the number of seeds in
// ROLLOUT_GUARD_SEEDS (the documentation's figures: 10). Without it, it is
// skipped.
//
//	ROLLOUT_GUARD_SEEDS=10 go test -run TestGuardFigures -v ./rollout/
func TestGuardFigures(t *testing.T) {
	seeds, _ := strconv.Atoi(os.Getenv("ROLLOUT_GUARD_SEEDS"))
	if seeds < 1 {
		t.Skip("set ROLLOUT_GUARD_SEEDS to measure")
	}
	var falseAlarms, power, first float64
	for s := range uint64(seeds) {
		falseAlarms += share(rollouts(1000+2*s, 500, 0.01, 0.01, 10_000), 10_000)
		power += share(rollouts(100+2*s, 500, 0.001, 0.01, 2_000), 2_000)
		first += share(rollouts(3000+2*s, 500, 0.001, 0.03, 1_000), 750)
	}
	n := float64(seeds)
	t.Logf("%d rollouts each, gate at 50%% through Run: both arms failing 1%%: %.2f%% tripped within 10,000 new-arm calls; "+
		"old 0.1%% vs new 1%%: %.2f%% within 2,000; old 0.1%% vs new 3%%: %.2f%% within 750",
		500*seeds, 100*falseAlarms/n, 100*power/n, 100*first/n)
}

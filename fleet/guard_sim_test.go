package fleet_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/rollout"
)

// The figures of the fleet guard, on count-level simulations that apply
// the rule a Guard applies (fleet.Judge): 8 instances, each with 1/8 of the
// traffic of a gate at 50%, send their counts every batch; the lease
// holder judges the pooled counts once per batch.
const (
	simInstances = 8
	simBatch     = 25 // calls of each arm per instance per batch
)

// binomial draws from Binomial(n, p) by inversion; q0 is (1-p)^n.
func binomial(rng *rand.Rand, n int64, p, q0 float64) int64 {
	u, prob := rng.Float64(), q0
	cdf := prob
	var k int64
	for u > cdf && k < n {
		prob *= float64(n-k) / float64(k+1) * p / (1 - p)
		k++
		cdf += prob
	}
	return k
}

// arm simulates one arm's calls at a failure rate.
type arm struct{ p, q0 float64 }

func newArm(p float64) arm { return arm{p, math.Pow(1-p, simBatch)} }

func (a arm) batch(rng *rand.Rand) rollout.ArmCounts {
	return rollout.ArmCounts{Calls: simBatch, Failures: binomial(rng, simBatch, a.p, a.q0)}
}

// fleetRollout runs one rollout of the fleet guard for at most maxBatches
// and returns the pooled new-arm calls at the kill, or 0. If locals is
// non-nil, each instance also runs a guard of its own on its own counts,
// and locals reports whether any of them tripped.
func fleetRollout(t *rollout.GuardTest, seed uint64, old, neu arm, maxBatches int, locals *bool) int64 {
	rng := rand.New(rand.NewPCG(seed, 14))
	judge := fleet.Judge(t, rollout.Counts{})
	var own [simInstances]rollout.Counts
	var local [simInstances]func(rollout.Counts, bool) string
	if locals != nil {
		for i := range local {
			local[i] = fleet.Judge(t, rollout.Counts{})
		}
	}
	var pooled rollout.Counts
	for range maxBatches {
		for i := range own {
			b := rollout.Counts{Old: old.batch(rng), New: neu.batch(rng)}
			own[i] = own[i].Add(b)
			pooled = pooled.Add(b)
			if local[i] != nil && local[i](own[i], false) != "" {
				*locals, local[i] = true, nil
			}
		}
		if judge(pooled, false) != "" {
			return pooled.New.Calls
		}
	}
	return 0
}

// singleRollout runs rollout's guard rule on one instance that sees all the
// traffic, looking after every call of each arm, and returns the new-arm
// calls at the kill, or 0.
func singleRollout(t *rollout.GuardTest, seed uint64, old, neu arm, maxCalls int64) int64 {
	rng := rand.New(rand.NewPCG(seed, 41))
	judge := fleet.Judge(t, rollout.Counts{})
	var c rollout.Counts
	for c.New.Calls < maxCalls {
		c.Old.Calls++
		c.New.Calls++
		if rng.Float64() < old.p {
			c.Old.Failures++
		}
		if rng.Float64() < neu.p {
			c.New.Failures++
		}
		if judge(c, false) != "" {
			return c.New.Calls
		}
	}
	return 0
}

// TestFleetGuardPower: new arm 1% failures against old 0.1%. The fleet
// guard on 8 instances needs as many new-arm calls in total (±20%) to
// kill as one instance that sees all the traffic.
func TestFleetGuardPower(t *testing.T) {
	test, _ := rollout.NewGuardTest()
	const rollouts = 100
	old, neu := newArm(0.001), newArm(0.01)
	var fleetSum, singleSum float64
	for seed := range uint64(rollouts) {
		f := fleetRollout(test, seed, old, neu, 2000, nil)
		s := singleRollout(test, seed, old, neu, 400_000)
		if f == 0 || s == 0 {
			t.Fatalf("seed %d: no kill (fleet %d, single %d)", seed, f, s)
		}
		fleetSum += float64(f)
		singleSum += float64(s)
	}
	fleetMean, singleMean := fleetSum/rollouts, singleSum/rollouts
	ratio := fleetMean / singleMean
	t.Logf("new-arm calls to the kill, mean of %d rollouts: fleet of %d: %.0f; one instance with all traffic: %.0f; ratio %.3f",
		rollouts, simInstances, fleetMean, singleMean, ratio)
	if ratio < 0.8 || ratio > 1.2 {
		t.Errorf("fleet/single = %.3f, want within ±20%%", ratio)
	}
}

// TestFleetGuardFalseKills: both arms fail 1%; 500 rollouts of 20,000
// new-arm calls per instance on 8 instances. The fleet guard kills at most
// 1% of them; 8 guards that each judge their own instance (as without the
// fleet guard, where any one's kill stops the fleet) kill more.
func TestFleetGuardFalseKills(t *testing.T) {
	test, _ := rollout.NewGuardTest()
	const rollouts = 500
	a := newArm(0.01)
	fleetKills, localKills := 0, 0
	for seed := range uint64(rollouts) {
		var local bool
		if fleetRollout(test, seed, a, a, 20_000/simBatch, &local) != 0 {
			fleetKills++
		}
		if local {
			localKills++
		}
	}
	t.Logf("false kills over %d rollouts of 20,000 new-arm calls per instance on %d instances: fleet guard %d (%.1f%%); independent local guards %d (%.1f%%)",
		rollouts, simInstances, fleetKills, 100*float64(fleetKills)/rollouts, localKills, 100*float64(localKills)/rollouts)
	if fleetKills > rollouts/100 {
		t.Errorf("fleet guard false kills %d of %d, want at most 1%%", fleetKills, rollouts)
	}
}

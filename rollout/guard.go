package rollout

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// GuardOption configures the guard that WithGuard adds to a gate. A nil
// GuardOption is skipped.
type GuardOption interface {
	applyGuard(*guardConfig) error
}

type guardOption func(*guardConfig) error

func (f guardOption) applyGuard(c *guardConfig) error { return f(c) }

// guardConfig holds every GuardOption; defaults live in defaultGuardConfig.
type guardConfig struct {
	confidence  float64
	minSamples  int64
	checkEvery  int64
	window      int64
	maxPanics   int64
	maxMismatch float64
}

func defaultGuardConfig() guardConfig {
	return guardConfig{
		confidence:  0.99,
		minSamples:  500,
		checkEvery:  500,
		window:      5000,
		maxPanics:   1,
		maxMismatch: 0.05,
	}
}

// WithGuard adds a guard to the gate: it compares the failure rate of the
// new arm with the old arm's, from the calls that the gate's Paths record,
// and kills the gate (Status.KilledBy == KilledByGuard) when the new arm is
// worse; it also vetoes schedule promotions while the new arm is
// under-sampled or looks unhealthy. A gate takes at most one guard. The
// guard reads the gate's call counts, so it adds one atomic add to the
// calls of the new arm. A failure of an arm is an error, panic, invalid
// result or timeout; for the new arm, also a Shadow mismatch.
//
// Window: every WithCheckEvery (default 500) calls of the new arm the guard
// takes a checkpoint. The window is the last WithWindow (default 5,000)
// calls of the new arm and the old arm's calls over the same span of
// traffic: it is counted in calls, so no clock is read, and both arms are
// measured at the same time.
//
// Test: each checkpoint gets one look, as soon as both arms have at least
// WithMinSamples (default 500) calls in the window: at the checkpoint, or,
// if the old arm is short then (at a gate of 50% it is, half the time, at
// the first checkpoint), when it has caught up. The guard counts only the
// new arm's calls, so it comes back after as many of them as the old arm
// should need at the rate it has been called; a late look's window also
// holds the calls since the checkpoint, and a look still waiting at the
// next checkpoint gives way to that one's. A look computes the one-sided
// two-proportion z statistic with the pooled standard error,
//
//	z = (f₁/n₁ − f₀/n₀) / √(p(1−p)(1/n₁ + 1/n₀)),  p = (f₀+f₁)/(n₀+n₁),
//
// and trips if z reaches the look's critical value and Fisher's exact
// one-sided p-value is within the look's error rate. Fisher's test guards
// the regime where failures are few and the normal approximation is
// anti-conservative (at 0.2% failures and a 10% gate, z alone tripped 1.8%
// of healthy rollouts; with Fisher, 0.3%).
//
// Repeated looks: the guard looks again and again, so each look gets only
// part of the error rate α = 1 − confidence (default 0.01). It spends α
// along the new arm's calls n since the guard started or the gate resumed
// by the spending function α(n) = α·n²/(n² + n₀²), with n₀ = 4 × the
// minimum samples (2,000 by default); a look at n, after a look at n', has
// error rate α(n) − α(n'), and its critical z is Φ⁻¹(1 − (α(n) − α(n'))).
// Looks are timed by call counts alone, never by failures, so by the union
// bound the chance that a guard ever trips on a new arm that is no worse
// than the old one is at most α, however long it runs. The price is a
// rising bar: by default the critical z is 3.24 at the first look (500
// calls), 2.95–2.99 at looks 2–4, 3.9 at 10,000 calls and about 5.4 at
// 100,000, so a late, small regression is caught more slowly; large ones (a
// lookup returning nothing for 3% of keys gives z = 38) and the absolute
// limits are not affected. Measured through Path.Run, a gate at 50% routing
// keys by their hash, over 5,000 seeded rollouts: both arms failing 1%,
// 0.5% tripped within 10,000 calls of the new arm; old 0.1% against new 1%,
// 86% tripped within 2,000 calls of the new arm; old 0.1% against new 3%,
// 78% tripped within 750 (the first look; 42% when a look whose old arm was
// short was skipped). At a gate above 50% the old arm is the smaller
// sample, and the test needs more calls of the new arm for the same power.
//
// Absolute limits trip at once, whatever the old arm does: WithMaxPanics
// (default 1: any panic of the new arm in the window) and
// WithMaxMismatchRatio (default 5% of the new arm's calls in the window,
// once it has the minimum samples).
//
// A trip kills the gate with a reason that states the numbers, such as
// "new 4.1% failures (41/1000) vs old 0.20% (2/1000), z=6.0 (limit 2.88 at
// look 1; Fisher p=7.4e-11)". Resume starts a fresh test. Gate.Guard
// reports the window's counts.
//
// Promotion: the guard vetoes a schedule promotion while the new arm has
// had fewer than the minimum calls since the last promotion, while the old
// arm has fewer than the minimum in the window, or while the window's z
// reaches the unadjusted critical value Φ⁻¹(confidence) (2.33): a hold is
// no verdict, so it spends no error rate. A step of a low-traffic gate is
// therefore held until it has seen enough calls.
func WithGuard(opts ...GuardOption) Option {
	return gateOption(func(c *gateConfig) error {
		test, err := NewGuardTest(opts...)
		if err != nil {
			return err
		}
		for _, v := range c.vetoes {
			if _, ok := v.(*guard); ok {
				return invalid("WithGuard: given twice; a gate takes one guard")
			}
		}
		gd := newGuard(test)
		c.vetoes = append(c.vetoes, gd)
		c.onBuild = append(c.onBuild, gd.bind)
		return nil
	})
}

// WithConfidence sets the confidence of the guard's test, in (0.5, 1). The
// default is 0.99: over the life of the guard, the chance that it kills a
// new arm that fails no more often than the old one is at most 1%.
func WithConfidence(c float64) GuardOption {
	return guardOption(func(g *guardConfig) error {
		if !(c > 0.5 && c < 1) {
			return invalid("WithConfidence(%v): must be in (0.5, 1)", c)
		}
		g.confidence = c
		return nil
	})
}

// WithMinSamples sets how many calls each arm needs in the window before
// the guard tests them, and how many calls of the new arm each schedule
// step needs before the guard allows a promotion. The default is 500.
func WithMinSamples(n int) GuardOption {
	return guardOption(func(g *guardConfig) error {
		if n < 1 {
			return invalid("WithMinSamples(%d): must be at least 1", n)
		}
		g.minSamples = int64(n)
		return nil
	})
}

// WithCheckEvery sets how many calls of the new arm pass between two looks
// of the guard's test. The default is 500.
func WithCheckEvery(n int) GuardOption {
	return guardOption(func(g *guardConfig) error {
		if n < 1 {
			return invalid("WithCheckEvery(%d): must be at least 1", n)
		}
		g.checkEvery = int64(n)
		return nil
	})
}

// WithWindow sets the guard's sliding window, in calls of the new arm: the
// test compares the new arm's last n calls with the old arm's calls over the
// same span of traffic. n must be a multiple of the check interval. The
// default is 5,000.
func WithWindow(n int) GuardOption {
	return guardOption(func(g *guardConfig) error {
		if n < 1 {
			return invalid("WithWindow(%d): must be at least 1", n)
		}
		g.window = int64(n)
		return nil
	})
}

// WithMaxPanics makes the guard kill the gate as soon as the new arm has
// panicked n times in the window, whatever the old arm does. The default
// is 1: any panic. 0 turns the limit off.
func WithMaxPanics(n int) GuardOption {
	return guardOption(func(g *guardConfig) error {
		if n < 0 {
			return invalid("WithMaxPanics(%d): must not be negative", n)
		}
		g.maxPanics = int64(n)
		return nil
	})
}

// WithMaxMismatchRatio makes the guard kill the gate as soon as the share of
// the new arm's calls in the window whose Shadow comparison found a
// mismatch reaches ratio, once the window holds the minimum samples. The
// default is 0.05. 0 turns the limit off.
func WithMaxMismatchRatio(ratio float64) GuardOption {
	return guardOption(func(g *guardConfig) error {
		if !(ratio >= 0 && ratio <= 1) {
			return invalid("WithMaxMismatchRatio(%v): must be in [0, 1]", ratio)
		}
		g.maxMismatch = ratio
		return nil
	})
}

// guard is the automatic rollback of one gate. Its counts are the gate's
// call counters (runStats): the hot path adds nothing to them but one
// atomic add on the new arm's sequence, which schedules the looks.
type guard struct {
	test  GuardTest
	zHold float64 // unadjusted one-sided critical z: promotions hold at or above it
	g     *Gate
	stats *runStats

	seq       atomic.Int64 // calls of the new arm recorded by the guard
	nextCheck atomic.Int64 // seq at which checkpoint is next called: the next checkpoint, or a look that waits

	mu       sync.Mutex
	due      int64    // seq of the next checkpoint
	waiting  bool     // the last checkpoint's look waits for the old arm's minimum samples
	lookBase Counts   // the start of the last checkpoint's window
	base     Counts   // counts at creation or at the last Resume
	snaps    []Counts // counts at the last window/checkEvery checkpoints, oldest first
	stepBase Counts   // counts when the guard last allowed a promotion
	looks    int      // z-test looks since base
	lastZ    float64
	lastCrit float64
	lastN    int64 // new-arm calls since base at the last look
	tripped  string
}

func newGuard(test *GuardTest) *guard {
	gd := &guard{test: *test, zHold: criticalZ(test.alpha)}
	gd.due = test.cfg.checkEvery
	gd.nextCheck.Store(gd.due)
	return gd
}

func (gd *guard) bind(g *Gate) {
	gd.g, gd.stats = g, g.stats
	g.guard = gd
}

// windowBaseLocked returns the counts at the start of the window. gd.mu
// must be held.
func (gd *guard) windowBaseLocked() Counts {
	if int64(len(gd.snaps)) == gd.test.cfg.window/gd.test.cfg.checkEvery {
		return gd.snaps[0]
	}
	return gd.base
}

// observe records n calls of the new arm with outcome o; mismatch reports a
// Shadow mismatch. It is the guard's hot path: one atomic add and one
// load, unless a limit or a checkpoint is due.
func (gd *guard) observe(o outcome, mismatch bool, n int64) {
	if o == outPanic && gd.test.cfg.maxPanics > 0 || mismatch && gd.test.cfg.maxMismatch > 0 {
		gd.checkLimits()
	}
	if s := gd.seq.Add(n); s >= gd.nextCheck.Load() {
		gd.checkpoint(s)
	}
}

func (gd *guard) checkLimits() {
	gd.mu.Lock()
	reason := gd.limitsLocked(gd.stats.counts().Sub(gd.windowBaseLocked()))
	gd.mu.Unlock()
	gd.trip(reason)
}

// limitsLocked checks the absolute limits on the window w, and returns the
// reason to trip, or "" if none is reached or the guard has tripped
// already. gd.mu must be held.
func (gd *guard) limitsLocked(w Counts) string {
	if gd.tripped != "" {
		return ""
	}
	return gd.test.Limits(w)
}

// checkpoint is called when the new arm's calls reach nextCheck. At a
// checkpoint (every checkEvery calls of the new arm) it moves the window by
// one step and checks the absolute limits; then, at the checkpoint or
// later, it looks once: it runs the z-test at this look's critical value as
// soon as both arms have the minimum samples in the window. While the old
// arm lacks them, it sets nextCheck to when the old arm should have them,
// at the rate it has been called, but no later than the next checkpoint.
func (gd *guard) checkpoint(s int64) {
	gd.mu.Lock()
	if s < gd.nextCheck.Load() {
		gd.mu.Unlock()
		return // another goroutine took this call
	}
	cur := gd.stats.counts()
	var reason string
	if s >= gd.due {
		gd.due = s + gd.test.cfg.checkEvery
		gd.lookBase = gd.windowBaseLocked()
		if int64(len(gd.snaps)) == gd.test.cfg.window/gd.test.cfg.checkEvery {
			gd.snaps = append(gd.snaps[:0], gd.snaps[1:]...)
		}
		gd.snaps = append(gd.snaps, cur)
		gd.waiting = true
		reason = gd.limitsLocked(cur.Sub(gd.lookBase))
	}
	next := gd.due
	w, least := cur.Sub(gd.lookBase), gd.test.cfg.minSamples
	if gd.waiting && reason == "" && gd.tripped == "" && gd.g.state.Load()&killedBit == 0 && w.New.Calls >= least {
		switch {
		case w.Old.Calls >= least:
			gd.waiting = false
			reason = gd.lookLocked(cur, w)
		case w.Old.Calls > 0:
			// The new arm's calls until the old arm has least, rounded up.
			wait := ((least-w.Old.Calls)*w.New.Calls + w.Old.Calls - 1) / w.Old.Calls
			next = min(next, s+wait)
		}
	}
	gd.nextCheck.Store(next)
	gd.mu.Unlock()
	gd.trip(reason)
}

// lookLocked runs the next look of the z-test on the window w, at the
// counts cur, and returns the reason to trip, or "". gd.mu must be held.
func (gd *guard) lookLocked(cur, w Counts) string {
	gd.looks++
	n := cur.New.Calls - gd.base.New.Calls
	l := gd.test.Look(gd.looks, gd.lastN, n, w)
	gd.lastN = n
	gd.lastZ, gd.lastCrit = l.Z, l.Critical
	return l.Reason
}

// trip kills the gate for reason, if it is not empty and the gate is
// alive. The trip is recorded before the kill, so a Resume that follows
// the kill always finds it to clear.
func (gd *guard) trip(reason string) {
	if reason == "" {
		return
	}
	gd.mu.Lock()
	if gd.tripped != "" {
		gd.mu.Unlock()
		return
	}
	gd.tripped = reason
	gd.mu.Unlock()
	if gd.g.kill(KilledByGuard, reason) {
		gd.g.notify()
	} else {
		gd.mu.Lock() // the gate was already killed: not the guard's verdict
		if gd.tripped == reason {
			gd.tripped = ""
		}
		gd.mu.Unlock()
	}
}

// reset starts a new test: Resume calls it, so data from before a kill
// cannot trip the guard again.
func (gd *guard) reset() {
	gd.mu.Lock()
	cur := gd.stats.counts()
	gd.base, gd.stepBase = cur, cur
	gd.snaps = gd.snaps[:0]
	gd.looks, gd.lastN = 0, 0
	gd.lastZ, gd.lastCrit = 0, 0
	gd.tripped = ""
	gd.due, gd.waiting = gd.seq.Load()+gd.test.cfg.checkEvery, false
	gd.nextCheck.Store(gd.due)
	gd.mu.Unlock()
}

// allowPromotion vetoes a schedule promotion while the new arm has had
// fewer than the minimum calls since the last promotion, the old arm fewer
// than the minimum in the window, or while the window's z reaches the
// unadjusted critical value (a hold is not a verdict, so it spends no
// error rate).
func (gd *guard) allowPromotion(next int, now time.Time) (bool, string) {
	gd.mu.Lock()
	defer gd.mu.Unlock()
	cur := gd.stats.counts()
	w := cur.Sub(gd.windowBaseLocked())
	least := gd.test.cfg.minSamples
	if since := cur.New.Calls - gd.stepBase.New.Calls; since < least {
		return false, fmt.Sprintf("guard: under-sampled: new arm has %d of %d calls since the last promotion", since, least)
	}
	if w.Old.Calls < least {
		return false, fmt.Sprintf("guard: under-sampled: old arm has %d of %d calls in the window", w.Old.Calls, least)
	}
	if z := zScore(w); z >= gd.zHold {
		return false, fmt.Sprintf("guard: unhealthy: %s, z=%.1f (hold at %.2f)", rates(w), z, gd.zHold)
	}
	gd.stepBase = cur
	return true, ""
}

// ArmCounts are an arm's calls in the guard's window. The zero value is an
// arm without calls.
type ArmCounts struct {
	// Calls is the number of calls.
	Calls int64 `json:"calls"`
	// Failures counts calls that failed (error, panic, invalid, timeout)
	// or, for the new arm, whose Shadow comparison found a mismatch.
	Failures int64 `json:"failures"`
	// Panics and Mismatches are the calls that panicked and, for the new
	// arm, the Shadow mismatches.
	Panics     int64 `json:"panics"`
	Mismatches int64 `json:"mismatches"`
}

// GuardStatus is a snapshot of a gate's guard, as Gate.Guard reports it.
// The zero value is a guard that has seen no call.
type GuardStatus struct {
	// Old and New are the arms' counts in the window.
	Old ArmCounts `json:"old"`
	New ArmCounts `json:"new"`
	// Looks is the number of z-tests made since the guard started or the
	// gate last resumed; Z and Critical are the z and critical value of
	// the last one.
	Looks    int     `json:"looks"`
	Z        float64 `json:"z"`
	Critical float64 `json:"critical"`
	// Tripped is the reason of the guard's kill since the gate last
	// resumed, or empty.
	Tripped string `json:"tripped,omitempty"`
}

// Guard reports the state of the gate's guard; ok is false if the gate has
// no guard.
func (g *Gate) Guard() (st GuardStatus, ok bool) {
	gd := g.guard
	if gd == nil {
		return GuardStatus{}, false
	}
	gd.mu.Lock()
	defer gd.mu.Unlock()
	w := gd.stats.counts().Sub(gd.windowBaseLocked())
	return GuardStatus{Old: w.Old, New: w.New, Looks: gd.looks,
		Z: gd.lastZ, Critical: gd.lastCrit, Tripped: gd.tripped}, true
}

// zScore is the one-sided two-proportion z statistic of the new arm's
// failure rate over the old arm's, with the pooled standard error.
func zScore(w Counts) float64 {
	n1, f1 := float64(w.New.Calls), float64(min(w.New.Failures, w.New.Calls))
	n0, f0 := float64(w.Old.Calls), float64(min(w.Old.Failures, w.Old.Calls))
	if n1 == 0 || n0 == 0 {
		return 0
	}
	p := (f1 + f0) / (n1 + n0)
	se := math.Sqrt(p * (1 - p) * (1/n1 + 1/n0))
	if se == 0 {
		return 0
	}
	return (f1/n1 - f0/n0) / se
}

// criticalZ is the one-sided critical value for error rate a: the z with
// P(Z ≥ z) = a for a standard normal Z.
func criticalZ(a float64) float64 { return math.Sqrt2 * math.Erfcinv(2*a) }

// fisherP is the one-sided p-value of Fisher's exact test that the new arm
// fails more often than the old: P(X ≥ new failures) for X hypergeometric
// (the failures of both arms drawn at random between them). It confirms the
// z-test where the normal approximation is poor, with few failures.
func fisherP(w Counts) float64 {
	n1 := w.New.Calls
	big := n1 + w.Old.Calls
	k := min(w.New.Failures, n1) + min(w.Old.Failures, w.Old.Calls) // failures of both arms
	x := min(w.New.Failures, n1)
	if x <= 0 {
		return 1
	}
	hi := min(k, n1)
	// log pmf(x) = lC(k, x) + lC(big-k, n1-x) - lC(big, n1)
	lp := lchoose(k, x) + lchoose(big-k, n1-x) - lchoose(big, n1)
	term := math.Exp(lp)
	sum := term
	for i := x; i < hi; i++ {
		// pmf(i+1)/pmf(i) = (k-i)(n1-i) / ((i+1)(big-k-n1+i+1))
		term *= float64(k-i) * float64(n1-i) / (float64(i+1) * float64(big-k-n1+i+1))
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return min(sum, 1)
}

func lchoose(n, k int64) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// rates states both arms' failure rates, as in
// "new 4.1% failures (41/1000) vs old 0.2% (2/1000)".
func rates(w Counts) string {
	return fmt.Sprintf("new %s failures (%d/%d) vs old %s (%d/%d)",
		pct(w.New.Failures, w.New.Calls), w.New.Failures, w.New.Calls, pct(w.Old.Failures, w.Old.Calls), w.Old.Failures, w.Old.Calls)
}

func pct(f, n int64) string {
	if n == 0 {
		return "0%"
	}
	return pctf(float64(f) / float64(n))
}

func pctf(r float64) string {
	p := 100 * r
	if p != 0 && p < 1 {
		return fmt.Sprintf("%.2f%%", p)
	}
	return fmt.Sprintf("%.1f%%", p)
}

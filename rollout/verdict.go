package rollout

import "fmt"

// Counts are calls of both arms of a gate: cumulative, as Gate.Counts
// reports them, or over a window (the difference of two). The zero value
// has no calls.
type Counts struct {
	Old ArmCounts `json:"old"`
	New ArmCounts `json:"new"`
}

// Add returns the sum of c and b: counts pooled from two sources.
func (c Counts) Add(b Counts) Counts {
	return Counts{c.Old.add(b.Old, 1), c.New.add(b.New, 1)}
}

// Sub returns c minus b: the counts of the window from b to c.
func (c Counts) Sub(b Counts) Counts {
	return Counts{c.Old.add(b.Old, -1), c.New.add(b.New, -1)}
}

func (a ArmCounts) add(b ArmCounts, sign int64) ArmCounts {
	return ArmCounts{a.Calls + sign*b.Calls, a.Failures + sign*b.Failures,
		a.Panics + sign*b.Panics, a.Mismatches + sign*b.Mismatches}
}

// Counts returns the calls that the gate's Paths have recorded since the
// gate was created, by arm, counted as its guard counts them: the new
// arm's Failures include its Shadow mismatches. It reads atomic counters
// only, so it may be called at any rate.
func (g *Gate) Counts() Counts { return g.stats.counts() }

// counts reads the cumulative counts of both arms.
func (s *runStats) counts() Counts {
	var c Counts
	for a, ac := range []*ArmCounts{&c.Old, &c.New} {
		for o := range numOutcomes {
			n := s.calls.Load(callIndex(arm(a), o))
			ac.Calls += n
			if o != outOK {
				ac.Failures += n
			}
		}
		ac.Panics = s.calls.Load(callIndex(arm(a), outPanic))
	}
	c.New.Mismatches = s.mismatches.Load(0)
	c.New.Failures += c.New.Mismatches
	return c
}

// GuardTest is the statistics of the guard that WithGuard adds, for counts
// pooled elsewhere, such as across the instances of a fleet: the same
// absolute limits, z-test, Fisher confirmation and error-rate spending
// (see WithGuard). It keeps no state: the caller keeps the window, takes a
// checkpoint every CheckEvery calls of the new arm and remembers where its
// last look was. The zero value is not usable: use NewGuardTest.
type GuardTest struct {
	cfg   guardConfig
	alpha float64
}

// NewGuardTest returns the test that WithGuard(opts...) would run. Errors
// wrap ErrInvalidConfig and name the option and its value.
func NewGuardTest(opts ...GuardOption) (*GuardTest, error) {
	cfg := defaultGuardConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyGuard(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.window%cfg.checkEvery != 0 {
		return nil, invalid("WithWindow(%d): must be a multiple of WithCheckEvery(%d)", cfg.window, cfg.checkEvery)
	}
	return &GuardTest{cfg: cfg, alpha: 1 - cfg.confidence}, nil
}

// CheckEvery is the number of calls of the new arm between checkpoints.
func (t *GuardTest) CheckEvery() int64 { return t.cfg.checkEvery }

// Window is the window's length in calls of the new arm: a multiple of
// CheckEvery.
func (t *GuardTest) Window() int64 { return t.cfg.window }

// MinSamples is the number of calls each arm needs in the window before a
// look.
func (t *GuardTest) MinSamples() int64 { return t.cfg.minSamples }

// Look is the result of one look of a GuardTest. The zero value is a look
// that did not trip.
type Look struct {
	// Trip reports that the new arm is worse; Reason states the numbers,
	// as a guard's kill does.
	Trip   bool
	Reason string
	// Z and Critical are the look's z statistic and critical value; P is
	// Fisher's p-value, computed only when Z reaches Critical.
	Z, Critical, P float64
}

// Limits checks the absolute limits (WithMaxPanics, WithMaxMismatchRatio)
// on the window w. The reason is empty if none is reached.
func (t *GuardTest) Limits(w Counts) string {
	c := t.cfg
	if c.maxPanics > 0 && w.New.Panics >= c.maxPanics {
		return fmt.Sprintf("new arm panics: %d in %d calls (limit %d)", w.New.Panics, w.New.Calls, c.maxPanics)
	}
	if c.maxMismatch > 0 && w.New.Calls >= c.minSamples && float64(w.New.Mismatches) >= c.maxMismatch*float64(w.New.Calls) {
		return fmt.Sprintf("new %s mismatches (%d/%d), limit %s",
			pct(w.New.Mismatches, w.New.Calls), w.New.Mismatches, w.New.Calls, pctf(c.maxMismatch))
	}
	return ""
}

// Ready reports whether the window w holds the minimum samples of both
// arms, so that a look may be taken.
func (t *GuardTest) Ready(w Counts) bool {
	return w.New.Calls >= t.cfg.minSamples && w.Old.Calls >= t.cfg.minSamples
}

// Look runs look number look (1 for the first) of the z-test on the window
// w, when the new arm has made n calls since the test started and had made
// prev calls at the previous look (0 before the first). The look spends the
// error rate α(n) − α(prev) of WithGuard's spending function, so looks
// timed by call counts alone trip a new arm no worse than the old one with
// a chance of at most 1 − confidence in all.
func (t *GuardTest) Look(look int, prev, n int64, w Counts) Look {
	a := t.spent(float64(n)) - t.spent(float64(prev))
	z, crit := zScore(w), criticalZ(a)
	l := Look{Z: z, Critical: crit}
	if z < crit {
		return l
	}
	l.P = fisherP(w)
	if l.P > a {
		return l
	}
	l.Trip = true
	l.Reason = fmt.Sprintf("%s, z=%.1f (limit %.2f at look %d; Fisher p=%.2g)", rates(w), z, crit, look, l.P)
	return l
}

// spent is the error rate spent by the time the new arm has made n calls
// since the test started: α·n²/(n²+n₀²), with n₀ = 4 × the minimum
// samples. It rises from 0 to α/2 at n₀ and tends to α, so all looks
// together spend at most α.
func (t *GuardTest) spent(n float64) float64 {
	n0 := 4 * float64(t.cfg.minSamples)
	return t.alpha * n * n / (n*n + n0*n0)
}

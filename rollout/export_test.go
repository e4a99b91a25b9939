package rollout

// Record records n calls of an arm with the given outcome, exactly as Run
// and Shadow do, so that the statistical tests can drive the guard with
// simulated traffic without running arms. mismatch marks Shadow mismatches.
func Record(g *Gate, variant, outcomeName string, mismatch bool, n int64) {
	a := armOld
	if variant == VariantNew {
		a = armNew
	}
	o := outOK
	for i, name := range outcomeNames {
		if name == outcomeName {
			o = outcome(i)
		}
	}
	if mismatch {
		g.stats.mismatches.Add(0, n)
	}
	g.stats.calls.Add(callIndex(a, o), n)
	if a == armNew && g.guard != nil {
		g.guard.observe(o, mismatch, n)
	}
}

package rollout

// Record records n calls of an arm with the given outcome, exactly as
// Path.Run and Path.Shadow do, so that the statistical tests can drive the
// guard with simulated traffic without running arms. mismatch marks Shadow
// mismatches.
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
	g.record(a, o, mismatch, n)
}

package rollout

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Names of the events a Path adds to the caller's span (see the package
// doc, Traces), and of their attributes beyond those of the call counters.
// feature_flag.* are from the OpenTelemetry semantic conventions.
const (
	eventEvaluation = "feature_flag.evaluation"
	eventFallback   = "blastradius.rollout.fallback"
	eventShadow     = "blastradius.rollout.shadow"
	eventMismatch   = "blastradius.rollout.shadow.mismatch"
	eventSkipped    = "blastradius.rollout.shadow.skipped"

	attrProvider   = "feature_flag.provider.name"
	attrFlagReason = "feature_flag.result.reason"
	attrMode       = "mode"

	providerName = "blastradius"
	modeRun      = "run"
	modeShadow   = "shadow"
)

// Values of feature_flag.result.reason, from the semantic conventions.
const (
	reasonStatic   = "static"   // 0% or 100%: the same answer for every key
	reasonSplit    = "split"    // a partial rollout: the key's bucket decided
	reasonDisabled = "disabled" // killed
)

// evaluationReason returns the feature_flag.result.reason of a decision
// that enabled the key (on) or not, from the gate's state.
func (g *Gate) evaluationReason(on bool) string {
	s := g.state.Load()
	if !on && s&killedBit != 0 {
		return reasonDisabled
	}
	if u := uint32(s); u == 0 || u >= Buckets {
		return reasonStatic
	}
	return reasonSplit
}

// traceEvaluation adds the feature_flag.evaluation event to span: the
// gate's decision for the key (the variant of arm a), its reason, and the
// outcome o of the arm that served the call.
func (g *Gate) traceEvaluation(span trace.Span, mode string, a arm, o outcome) {
	span.AddEvent(eventEvaluation, trace.WithAttributes(
		attribute.String(attrKey, g.name),
		attribute.String(attrProvider, providerName),
		attribute.String(attrVariant, variantNames[a]),
		attribute.String(attrFlagReason, g.evaluationReason(a == armNew)),
		attribute.String(attrMode, mode),
		attribute.String(attrOutcome, outcomeNames[o]),
	))
}

// traceRun records on span the call of arm a by Run with outcome o: its
// evaluation, or, for a call of Old after New failed, the fallback.
func (g *Gate) traceRun(span trace.Span, a arm, fallback bool, o outcome) {
	if fallback {
		span.AddEvent(eventFallback, trace.WithAttributes(attribute.String(attrKey, g.name), attribute.String(attrOutcome, outcomeNames[o])))
		return
	}
	g.traceEvaluation(span, modeRun, a, o)
}

// traceShadow records on span the shadow call of New with outcome o, and
// the mismatch, if any.
func (g *Gate) traceShadow(span trace.Span, o outcome, mismatch bool) {
	key := attribute.String(attrKey, g.name)
	span.AddEvent(eventShadow, trace.WithAttributes(key, attribute.String(attrOutcome, outcomeNames[o])))
	if mismatch {
		span.AddEvent(eventMismatch, trace.WithAttributes(key))
	}
}

// traceSkipped records on span that Shadow skipped New: the cap on its
// calls in flight was reached.
func (g *Gate) traceSkipped(span trace.Span) {
	span.AddEvent(eventSkipped, trace.WithAttributes(attribute.String(attrKey, g.name)))
}

// armOf returns the arm of a gate's decision: armNew if it enabled the key.
func armOf(on bool) arm {
	if on {
		return armNew
	}
	return armOld
}

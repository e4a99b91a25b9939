package rollout

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/blastradius/blastradius/internal/telemetry"
)

// ErrPanic is wrapped by the error that Path.Run and Path.Shadow return
// when an arm panics: the panic is recovered and returned as a *PanicError.
var ErrPanic = errors.New("rollout: panic")

// ErrInvalidResult is wrapped by the error that Path.Run returns when
// Arms.Validate rejects an arm's result.
var ErrInvalidResult = errors.New("rollout: invalid result")

// Variants: the two arms of a rollout, as the attribute
// feature_flag.result.variant reports them.
const (
	// VariantOld is the old code path: keys the gate does not enable.
	VariantOld = "old"
	// VariantNew is the new code path: keys the gate enables.
	VariantNew = "new"
)

// Outcomes of one call of an arm, as the attribute outcome of
// blastradius.rollout.calls reports them. Every outcome but OutcomeOK is a
// failure of the arm.
const (
	// OutcomeOK: the arm returned a nil error and a valid result.
	OutcomeOK = "ok"
	// OutcomeError: the arm returned an error (other than its own timeout).
	OutcomeError = "error"
	// OutcomePanic: the arm panicked; the panic was recovered.
	OutcomePanic = "panic"
	// OutcomeInvalid: Arms.Validate rejected the arm's result.
	OutcomeInvalid = "invalid"
	// OutcomeTimeout: the arm's error matches context.DeadlineExceeded and
	// the deadline was the arm's own (Arms.Timeout), not the caller's.
	OutcomeTimeout = "timeout"
)

type arm uint8

const (
	armOld arm = iota
	armNew
)

var variantNames = [...]string{armOld: VariantOld, armNew: VariantNew}

type outcome uint8

const (
	outOK outcome = iota
	outError
	outPanic
	outInvalid
	outTimeout
	numOutcomes
)

var outcomeNames = [...]string{outOK: OutcomeOK, outError: OutcomeError, outPanic: OutcomePanic, outInvalid: OutcomeInvalid, outTimeout: OutcomeTimeout}

// callIndex is the index of (arm, outcome) in runStats.calls.
func callIndex(a arm, o outcome) int { return int(a)*int(numOutcomes) + int(o) }

// Attribute names of the call counters.
const (
	attrVariant = "feature_flag.result.variant"
	attrOutcome = "outcome"
)

// runStats are a gate's per-call counts for Path.Run and Path.Shadow: atomic counts
// reported through observable counters, so recording a call is one atomic
// add with no attribute work and no SDK call.
type runStats struct {
	calls      *telemetry.Counts // callIndex(arm, outcome)
	mismatches *telemetry.Counts // one count
	skipped    *telemetry.Counts // one count
}

func newRunStats(m metric.Meter, name string) *runStats {
	key := attribute.String(attrKey, name)
	sets := make([][]attribute.KeyValue, 0, 2*numOutcomes)
	for a := range variantNames {
		for o := range outcomeNames {
			sets = append(sets, []attribute.KeyValue{key,
				attribute.String(attrVariant, variantNames[a]), attribute.String(attrOutcome, outcomeNames[o])})
		}
	}
	return &runStats{
		calls: telemetry.NewCounts(m, "blastradius.rollout.calls",
			"Calls of a rollout arm by Path.Run and Path.Shadow, by variant and outcome.", "{call}", sets...),
		mismatches: telemetry.NewCounts(m, "blastradius.rollout.mismatches",
			"Shadow calls whose new result differed from the old one.", "{call}", []attribute.KeyValue{key}),
		skipped: telemetry.NewCounts(m, "blastradius.rollout.shadow.skipped",
			"Shadow calls of the new arm skipped because the concurrency cap was reached.", "{call}", []attribute.KeyValue{key}),
	}
}

// record counts n calls of an arm with outcome o and feeds them to the
// guard, if any. mismatch reports Shadow comparisons that found the results
// unequal.
func (g *Gate) record(a arm, o outcome, mismatch bool, n int64) {
	if mismatch {
		g.stats.mismatches.Add(0, n)
	}
	g.stats.calls.Add(callIndex(a, o), n)
	if a == armNew && g.guard != nil {
		g.guard.observe(o, mismatch, n)
	}
}

// PanicError is the error Path.Run and Path.Shadow return for an arm that
// panicked. It matches ErrPanic, and unwraps to the panic value if that is
// an error. The zero value describes a panic of no arm with a nil value.
type PanicError struct {
	// Variant is the arm that panicked: VariantOld or VariantNew.
	Variant string
	// Value is the value passed to panic.
	Value any
	// Stack is the stack trace of the panicking goroutine.
	Stack []byte
}

// Error describes the panic.
func (e *PanicError) Error() string {
	return fmt.Sprintf("rollout: panic in %s arm: %v", e.Variant, e.Value)
}

// Is reports whether target is ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

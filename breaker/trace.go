package breaker

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/blastradius/blastradius/internal/telemetry"
)

// Names of the events a Breaker adds to the caller's span (see the package
// doc, Traces).
const (
	eventRejected     = "blastradius.breaker.rejected"
	eventRetry        = "blastradius.breaker.retry"
	eventRetryStopped = "blastradius.breaker.retry.stopped"
	eventTransition   = "blastradius.breaker.transition"
)

// Why a call was rejected without calling fn: the reason attribute of
// eventRejected.
const (
	rejectOpen      = "open"      // the breaker is open
	rejectProbes    = "half-open" // half-open, with its probes all in flight
	rejectThrottled = "throttled" // adaptive throttling
)

// traceRejection adds eventRejected to ctx's span, if it is recording.
func (b *Breaker) traceRejection(ctx context.Context, reason string) {
	if span := telemetry.Recording(ctx); span != nil {
		span.AddEvent(eventRejected, trace.WithAttributes(b.transAttr, attribute.String("reason", reason)))
	}
}

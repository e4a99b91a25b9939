package edge

// Names of the span attributes and events edge records on the request's
// span (see the package doc, Traces).
const (
	attrAuthOutcome = "blastradius.edge.auth.outcome"
	attrAuthReason  = "blastradius.edge.auth.reason"

	eventShed      = "blastradius.edge.shed"
	eventQueued    = "blastradius.edge.shed.queued"
	attrRetryAfter = "retry_after"
	attrWait       = "wait"
)

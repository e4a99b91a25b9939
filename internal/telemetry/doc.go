// Package telemetry holds the OpenTelemetry plumbing that every blastradius
// package shares: resolving the meter provider, creating instruments with
// errors routed to otel.Handle, and precomputed attribute options so hot
// paths record without allocating; and the trace helpers that record on
// the caller's span only when it is recording.
package telemetry

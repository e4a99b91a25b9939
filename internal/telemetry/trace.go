package telemetry

import (
	"context"
	"fmt"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Recording returns the span in ctx if it is recording, and nil otherwise:
// blastradius records on the caller's span only, and only when it records,
// so an untraced or sampled-out call pays one context lookup and allocates
// nothing.
func Recording(ctx context.Context) trace.Span {
	if s := trace.SpanFromContext(ctx); s.IsRecording() {
		return s
	}
	return nil
}

// MaxText is the most bytes of free text (an error, a panic value) that an
// event attribute carries: Text cuts longer text.
const MaxText = 256

// Text returns s cut to at most MaxText bytes, at a rune boundary.
func Text(s string) string {
	if len(s) <= MaxText {
		return s
	}
	n := MaxText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Exception attribute keys and event name, from the OpenTelemetry semantic
// conventions.
const (
	ExceptionEvent   = "exception"
	ExceptionType    = "exception.type"
	ExceptionMessage = "exception.message"
)

// RecordPanic adds an exception event for a recovered panic value v to
// span: its Go type and its text, cut by Text. The stack is not recorded:
// capturing one per panic is what a panic storm cannot afford, and the
// log has it, through a log budget.
func RecordPanic(span trace.Span, v any) {
	span.AddEvent(ExceptionEvent, trace.WithAttributes(
		attribute.String(ExceptionType, fmt.Sprintf("%T", v)),
		attribute.String(ExceptionMessage, Text(fmt.Sprint(v))),
	))
}

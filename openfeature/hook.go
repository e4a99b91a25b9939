package openfeature

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	of "github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/telemetry"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TraceHook is an OpenFeature hook that records every evaluation, of any
// provider's flag, as a feature_flag.evaluation event on the span of the
// evaluation's context, with the attributes of the OpenTelemetry semantic
// conventions for feature flags (v1.43.0) as the SDK's telemetry package
// computes them: feature_flag.key, feature_flag.provider.name,
// feature_flag.result.variant (or feature_flag.result.value without a
// variant), feature_flag.result.reason (lower case: "split", "static",
// "disabled", "error"), feature_flag.context.id (the targeting key, if any),
// feature_flag.version (the config version), and on an error error.type
// (such as "flag_not_found") and feature_flag.error.message (which the
// SDK still calls error.message, the conventions' earlier name). It does
// nothing when the span is not recording. Add it with the API's or a
// client's AddHooks.
type TraceHook struct {
	of.UnimplementedHook
}

// Finally records the evaluation's event.
func (TraceHook) Finally(ctx context.Context, hc of.HookContext, details of.InterfaceEvaluationDetails, _ of.HookHints) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	ev := telemetry.CreateEvaluationEvent(hc, details)
	attrs := make([]attribute.KeyValue, 0, len(ev.Attributes))
	for k, v := range ev.Attributes {
		switch {
		case k == telemetry.ContextIDKey && v == "":
			continue // no targeting key
		case k == telemetry.ErrorMessageKey:
			k = string(semconv.FeatureFlagErrorMessageKey)
		}
		attrs = append(attrs, attr(k, v))
	}
	slices.SortFunc(attrs, func(a, b attribute.KeyValue) int { return cmp.Compare(a.Key, b.Key) })
	span.AddEvent(ev.Name, trace.WithAttributes(attrs...))
}

// attr is the attribute k of the value v of an evaluation event: a string,
// bool, integer or float as such, anything else (an object flag's value)
// formatted with %v.
func attr(k string, v any) attribute.KeyValue {
	switch v := v.(type) {
	case string:
		return attribute.String(k, v)
	case bool:
		return attribute.Bool(k, v)
	case int64:
		return attribute.Int64(k, v)
	case int:
		return attribute.Int(k, v)
	case float64:
		return attribute.Float64(k, v)
	default:
		return attribute.String(k, fmt.Sprint(v))
	}
}

package openfeature_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	brof "github.com/blastradius/blastradius/openfeature"
	"github.com/blastradius/blastradius/rollout"
)

// TestTraceHook reads the feature_flag.evaluation events of evaluations
// through the SDK client from the trace SDK's in-memory exporter.
func TestTraceHook(t *testing.T) {
	reg := newRegistry(t)
	addGate(t, reg, "checkout-v2", rollout.WithPercent(30))
	addGate(t, reg, "search-v3", rollout.WithPercent(100)).Kill("INC-9")
	if _, err := reg.LoadConfig(strings.NewReader(`{"version":"cfg-7","gates":[]}`)); err != nil {
		t.Fatal(err)
	}
	api, client := start(t, reg)
	defer shutdown(t, api)
	client.AddHooks(brof.TraceHook{})

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("test").Start(context.Background(), "GET /checkout")
	ec := openfeature.NewEvaluationContext("user-42", nil)
	split := client.Boolean(ctx, "checkout-v2", false, ec)
	client.Boolean(ctx, "search-v3", true, ec)
	client.Boolean(ctx, "nope", false, ec)
	client.Boolean(ctx, "checkout-v2", false, openfeature.NewTargetlessEvaluationContext(nil))
	client.String(ctx, "checkout-v2", "x", ec)
	// Not recording: no span in the context, or a span already ended.
	client.Boolean(context.Background(), "checkout-v2", false, ec)
	span.End()
	client.Boolean(ctx, "checkout-v2", false, ec)

	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	variant := map[bool]string{true: "on", false: "off"}[split]
	const (
		ok      = "feature_flag.context.id=user-42 feature_flag.key=%s feature_flag.provider.name=blastradius feature_flag.result.reason=%s feature_flag.result.variant=%s feature_flag.version=cfg-7"
		failed  = "error.type=%s %sfeature_flag.error.message=openfeature: %s feature_flag.key=%s feature_flag.provider.name=blastradius feature_flag.result.reason=error feature_flag.result.value=%s%s"
		user    = "feature_flag.context.id=user-42 "
		version = " feature_flag.version=cfg-7"
	)
	want := []string{
		fmt.Sprintf(ok, "checkout-v2", "split", variant),
		fmt.Sprintf(ok, "search-v3", "disabled", "off"),
		fmt.Sprintf(failed, "flag_not_found", user, `no rollout gate named "nope" is registered (unknown or retired)`, "nope", "false", ""),
		fmt.Sprintf(failed, "targeting_key_missing", "", `rollout gate "checkout-v2" is at 30%: it needs a targeting key`, "checkout-v2", "false", version),
		fmt.Sprintf(failed, "type_mismatch", user, `rollout gate "checkout-v2" is a boolean flag`, "checkout-v2", "x", ""),
	}
	events := spans[0].Events
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d: %v", len(events), len(want), events)
	}
	for i, e := range events {
		if e.Name != "feature_flag.evaluation" {
			t.Errorf("event %d named %q", i, e.Name)
		}
		if got := attrString(e.Attributes); got != want[i] {
			t.Errorf("event %d:\n got %s\nwant %s", i, got, want[i])
		}
	}
}

// attrString formats attributes as sorted key=value pairs.
func attrString(attrs []attribute.KeyValue) string {
	s := make([]string, len(attrs))
	for i, a := range attrs {
		s[i] = fmt.Sprintf("%s=%s", a.Key, a.Value.String())
	}
	return strings.Join(s, " ")
}

// TestTraceHookNotRecording: without a recording span the hook costs no
// allocation.
func TestTraceHookNotRecording(t *testing.T) {
	hc := openfeature.NewHookContext("checkout-v2", openfeature.Boolean, false,
		openfeature.NewClientMetadata(""), openfeature.Metadata{Name: brof.Name}, openfeature.NewEvaluationContext("u", nil))
	var details openfeature.InterfaceEvaluationDetails
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		brof.TraceHook{}.Finally(ctx, hc, details, openfeature.HookHints{})
	}); n != 0 {
		t.Errorf("%v allocations per call without a recording span, want 0", n)
	}
}

package rollout_test

import (
	"context"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/blastradius/blastradius/rollout"
)

// Run records what it did on the span of the caller's context: here the
// span a server's instrumentation would have started for the request.
func ExamplePath_Run_trace() {
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("server")

	g, _ := rollout.New("price-v2", rollout.WithPercent(100))
	oldPrice := func(_ context.Context, sku string) (int, error) { return 1299, nil }
	newPrice := func(_ context.Context, sku string) (int, error) { return 0, fmt.Errorf("no such SKU %q", sku) }
	price, _ := rollout.NewPath(g, rollout.Arms[string, int]{Old: oldPrice, New: newPrice, Fallback: true})

	ctx, span := tracer.Start(context.Background(), "GET /price")
	_, _ = price.Run(ctx, "user-1", "sku-42")
	span.End()

	for _, e := range rec.Ended()[0].Events() {
		fmt.Println(e.Name)
		for _, kv := range e.Attributes {
			fmt.Printf("  %s=%s\n", kv.Key, kv.Value.String())
		}
	}
	// Output:
	// feature_flag.evaluation
	//   feature_flag.key=price-v2
	//   feature_flag.provider.name=blastradius
	//   feature_flag.result.variant=new
	//   feature_flag.result.reason=static
	//   mode=run
	//   outcome=error
	// blastradius.rollout.fallback
	//   feature_flag.key=price-v2
	//   outcome=ok
}

package openfeature_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/blastradius/blastradius/rollout"
)

// BenchmarkEvaluate compares an evaluation of a gate at 30% through the
// SDK client and the provider with the gate's own Enabled, in the same run.
func BenchmarkEvaluate(b *testing.B) {
	reg := newRegistry(b)
	g := addGate(b, reg, "checkout-v2", rollout.WithPercent(30))
	api, client := start(b, reg)
	defer shutdown(b, api)
	const n = 1024
	keys := make([]string, n)
	ecs := make([]openfeature.EvaluationContext, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
		ecs[i] = openfeature.NewEvaluationContext(keys[i], nil)
	}
	ctx := context.Background()

	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			client.Boolean(ctx, "checkout-v2", false, ecs[i%n])
		}
	})
	b.Run("enabled", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			g.Enabled(keys[i%n])
		}
	})
	b.Run("sdk-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				client.Boolean(ctx, "checkout-v2", false, ecs[i%n])
			}
		})
	})
	b.Run("enabled-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				g.Enabled(keys[i%n])
			}
		})
	})
}

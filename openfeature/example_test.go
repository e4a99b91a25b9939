package openfeature_test

import (
	"context"
	"fmt"

	"github.com/open-feature/go-sdk/openfeature"

	brof "github.com/blastradius/blastradius/openfeature"
	"github.com/blastradius/blastradius/rollout"
)

// A service evaluates its rollout gates through the OpenFeature SDK: the
// targeting key is the key the gate hashes, and a kill turns the flag off
// for everyone, whatever the default.
func Example() {
	reg, _ := rollout.NewRegistry()
	gate, _ := rollout.New("checkout-v2", rollout.WithPercent(30))
	_ = reg.Register(gate)

	provider, _ := brof.New(reg)
	if err := openfeature.SetProviderAndWait(provider); err != nil {
		fmt.Println(err)
		return
	}
	defer openfeature.Shutdown()           // stops the provider
	openfeature.AddHooks(brof.TraceHook{}) // a feature_flag.evaluation event on each evaluation's span
	client := openfeature.NewDefaultClient()
	ctx := context.Background()

	user := openfeature.NewEvaluationContext("user-7", nil)
	d, _ := client.BooleanValueDetails(ctx, "checkout-v2", false, user)
	fmt.Println(d.Value == gate.Enabled("user-7"), d.Reason, d.FlagMetadata["percent"])

	gate.Kill("INC-1234: payment errors")
	d, _ = client.BooleanValueDetails(ctx, "checkout-v2", true, user)
	fmt.Println(d.Value, d.Variant, d.Reason, d.FlagMetadata["killReason"])

	_, err := client.BooleanValue(ctx, "checkout-v3", false, user)
	fmt.Println(err)
	// Output:
	// true SPLIT 30
	// false off DISABLED INC-1234: payment errors
	// error code: FLAG_NOT_FOUND: openfeature: no rollout gate named "checkout-v3" is registered (unknown or retired)
}

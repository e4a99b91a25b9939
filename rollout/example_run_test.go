package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/blastradius/blastradius/rollout"
)

// Run routes each user to one arm; with WithFallback, a failure of the new
// arm is answered by the old one, and still counts against the new arm.
func ExampleRun_fallback() {
	g, _ := rollout.New("price-v2", rollout.WithPercent(100))
	oldPrice := func(context.Context) (int, error) { return 1299, nil }
	newPrice := func(context.Context) (int, error) { return 0, errors.New("pricing service: no such SKU") }

	p, err := rollout.Run(context.Background(), g, "user-1", oldPrice, newPrice, rollout.WithFallback())
	fmt.Println(p, err)

	_, err = rollout.Run(context.Background(), g, "user-1", oldPrice, newPrice)
	fmt.Println(err)
	// Output:
	// 1299 <nil>
	// pricing service: no such SKU
}

// Shadow serves the old arm's answer and compares the new arm's with it:
// users never see the new answer while it is being checked.
func ExampleShadow() {
	g, _ := rollout.New("name-lookup-v2", rollout.WithPercent(100), rollout.WithGuard())
	oldName := func(context.Context) (string, error) { return "Ada Lovelace", nil }
	newName := func(context.Context) (string, error) { return "ada lovelace", nil }

	name, err := rollout.Shadow(context.Background(), g, "user-1", oldName, newName)
	fmt.Println(name, err)

	// Tell the comparison that case does not matter.
	name, _ = rollout.Shadow(context.Background(), g, "user-1", oldName, newName,
		rollout.WithEqual(strings.EqualFold))
	fmt.Println(name)

	gs, _ := g.Guard()
	fmt.Printf("new arm: %d calls, %d mismatch\n", gs.New.Calls, gs.New.Mismatches)
	// Output:
	// Ada Lovelace <nil>
	// Ada Lovelace
	// new arm: 2 calls, 1 mismatch
}

// A guard kills the gate on its own when the new arm fails more often than
// the old one, and says why.
func ExampleWithGuard() {
	g, _ := rollout.New("search-v3", rollout.WithPercent(50), rollout.WithGuard(
		rollout.WithMinSamples(100), rollout.WithCheckEvery(100), rollout.WithWindow(1000)))
	search := func(context.Context) (int, error) { return 10, nil }
	flaky := func(ctx context.Context) (int, error) { return 0, errors.New("index shard unavailable") }
	for i := range 1000 {
		user := fmt.Sprintf("user-%d", i)
		newArm := search
		if i%10 == 0 { // one call in ten of the new arm's fails
			newArm = flaky
		}
		_, _ = rollout.Run(context.Background(), g, user, search, newArm)
	}
	st := g.Status()
	fmt.Println(st.Killed, st.KilledBy)
	fmt.Println(st.Reason)
	// Output:
	// true guard
	// new 8.0% failures (16/200) vs old 0.0% (0/197), z=4.1 (limit 2.99 at look 2; Fisher p=1.3e-05)
}

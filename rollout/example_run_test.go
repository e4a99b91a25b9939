package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/blastradius/blastradius/rollout"
)

// A Path routes each call to one arm by its key. With Fallback, a failure
// of the new arm is answered by the old one, and still counts against the
// new arm.
func ExamplePath_Run() {
	g, _ := rollout.New("price-v2", rollout.WithPercent(100))
	oldPrice := func(_ context.Context, sku string) (int, error) { return 1299, nil }
	newPrice := func(_ context.Context, sku string) (int, error) {
		return 0, fmt.Errorf("pricing service: no such SKU %q", sku)
	}

	price, err := rollout.NewPath(g, rollout.Arms[string, int]{Old: oldPrice, New: newPrice, Fallback: true})
	if err != nil {
		panic(err)
	}
	p, err := price.Run(context.Background(), "user-1", "sku-42")
	fmt.Println(p, err)

	strict, _ := rollout.NewPath(g, rollout.Arms[string, int]{Old: oldPrice, New: newPrice})
	_, err = strict.Run(context.Background(), "user-1", "sku-42")
	fmt.Println(err)
	// Output:
	// 1299 <nil>
	// pricing service: no such SKU "sku-42"
}

// Shadow serves the old arm's answer and compares the new arm's with it:
// users never see the new answer while it is being checked.
func ExamplePath_Shadow() {
	g, _ := rollout.New("name-lookup-v2", rollout.WithPercent(100), rollout.WithGuard())
	oldName := func(context.Context, string) (string, error) { return "Ada Lovelace", nil }
	newName := func(context.Context, string) (string, error) { return "ada lovelace", nil }

	name, _ := rollout.NewPath(g, rollout.Arms[string, string]{Old: oldName, New: newName})
	n, err := name.Shadow(context.Background(), "user-1", "user-1")
	fmt.Println(n, err)

	// Tell the comparison that case does not matter.
	folded, _ := rollout.NewPath(g, rollout.Arms[string, string]{Old: oldName, New: newName, Equal: strings.EqualFold})
	n, _ = folded.Shadow(context.Background(), "user-1", "user-1")
	fmt.Println(n)

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
	search, _ := rollout.NewPath(g, rollout.Arms[int, int]{
		Old: func(context.Context, int) (int, error) { return 10, nil },
		New: func(_ context.Context, user int) (int, error) {
			if user%10 == 0 { // one user in ten gets an error from the new arm
				return 0, errors.New("index shard unavailable")
			}
			return 10, nil
		},
	})
	for i := range 1000 {
		_, _ = search.Run(context.Background(), fmt.Sprintf("user-%d", i), i)
	}
	st := g.Status()
	fmt.Println(st.Killed, st.KilledBy)
	fmt.Println(st.Reason)
	// Output:
	// true guard
	// new 8.0% failures (16/200) vs old 0.0% (0/197), z=4.1 (limit 2.99 at look 2; Fisher p=1.3e-05)
}

package window_test

import (
	"fmt"
	"time"

	"github.com/blastradius/blastradius/internal/window"
)

func Example() {
	now := time.Unix(0, 0)
	const requests, accepts = 0, 1
	c := window.New(10*time.Second, 10, 2)
	c.Add(now, requests, 3)
	c.Add(now, accepts, 2)
	now = now.Add(5 * time.Second)
	c.AddDeferred(requests, 1) // no time, no lock; stamped at the next Sums
	sums := make([]int64, 2)
	c.Sums(now, sums)
	fmt.Println(sums)
	now = now.Add(5 * time.Second) // the first second leaves the window
	c.Sums(now, sums)
	fmt.Println(sums)
	// Output:
	// [4 2]
	// [1 0]
}

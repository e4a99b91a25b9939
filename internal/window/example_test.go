package window_test

import (
	"fmt"
	"time"

	"github.com/blastradius/blastradius/internal/window"
)

func Example() {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	const requests, accepts = 0, 1
	c, _ := window.New(10*time.Second, 10, 2, clock)
	c.Add(requests, 3)
	c.Add(accepts, 2)
	now = now.Add(5 * time.Second)
	c.AddDeferred(requests, 1) // no clock read; stamped at the next Sum
	fmt.Println(c.Sum(requests), c.Sum(accepts))
	now = now.Add(5 * time.Second) // the first second leaves the window
	fmt.Println(c.Sum(requests), c.Sum(accepts))
	// Output:
	// 4 2
	// 1 0
}

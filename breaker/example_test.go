package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blastradius/blastradius/breaker"
)

func Example() {
	b, err := breaker.New("payments",
		breaker.WithConsecutiveFailures(3),
		breaker.WithOpenDuration(30*time.Second),
		breaker.WithOnStateChange(func(name string, from, to breaker.State) {
			fmt.Printf("%s: %s -> %s\n", name, from, to)
		}),
	)
	if err != nil {
		panic(err)
	}
	sick := errors.New("upstream 503")
	for range 4 {
		err := b.Do(context.Background(), func(ctx context.Context) error { return sick })
		fmt.Println(err)
	}
	fmt.Println(b.State())
	// Output:
	// upstream 503
	// upstream 503
	// payments: closed -> open
	// upstream 503
	// breaker: open
	// open
}

func ExampleCall() {
	b, _ := breaker.New("lookup")
	price, err := breaker.Call(context.Background(), b, func(ctx context.Context) (int, error) {
		return 1299, nil
	})
	fmt.Println(price, err, b.State())
	// Output: 1299 <nil> closed
}

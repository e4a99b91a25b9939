package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

// A gate keeps a new code path to a sticky share of users; Kill stops it at
// once.
func Example() {
	g, err := rollout.New("checkout-v2", rollout.WithPercent(25), rollout.WithOwner("payments"))
	if err != nil {
		panic(err)
	}
	for _, user := range []string{"user-1", "user-2", "user-3", "user-4"} {
		fmt.Println(user, g.Enabled(user))
	}
	g.Kill("INC-1234: payment errors")
	fmt.Println("after kill:", g.Enabled("user-1"))
	st := g.Status()
	fmt.Println(st.Percent, st.Killed, st.Reason)
	// Output:
	// user-1 true
	// user-2 false
	// user-3 false
	// user-4 true
	// after kill: false
	// 25 true INC-1234: payment errors
}

func ExampleBucket() {
	// Enabled at percent p exactly when the bucket is below p × 10⁴.
	b := rollout.Bucket("checkout-v2", "user-1")
	fmt.Println(b, b < 25*1e4, b < 24*1e4)
	// Output: 247368 true false
}

func ExampleWithSchedule() {
	clock := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	g, _ := rollout.New("search-v3", rollout.WithClock(now), rollout.WithSchedule(
		rollout.Step{Percent: 1, Hold: time.Hour},
		rollout.Step{Percent: 5, Hold: 24 * time.Hour},
		rollout.Step{Percent: 100},
	))
	for _, d := range []time.Duration{0, time.Hour, time.Hour, 24 * time.Hour} {
		clock = clock.Add(d)
		st := g.Status()
		fmt.Printf("%s step %d: %v%%\n", clock.Format("Jan 2 15:04"), st.Step, st.Percent)
	}
	// Output:
	// Nov 22 09:00 step 0: 1%
	// Nov 22 10:00 step 1: 5%
	// Nov 22 11:00 step 1: 5%
	// Nov 23 11:00 step 2: 100%
}

func ExampleWithPromotionCheck() {
	clock := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	healthy := false
	g, _ := rollout.New("search-v3",
		rollout.WithClock(func() time.Time { return clock }),
		rollout.WithSchedule(rollout.Step{Percent: 1, Hold: time.Hour}, rollout.Step{Percent: 100}),
		rollout.WithPromotionCheck(func(next int, now time.Time) (bool, string) {
			if !healthy {
				return false, "error rate of the new path above the old path's"
			}
			return true, ""
		}))
	clock = clock.Add(2 * time.Hour)
	st := g.Status()
	fmt.Printf("%v%% held: %s\n", st.Percent, st.Held)
	healthy = true
	fmt.Printf("%v%%\n", g.Status().Percent)
	// Output:
	// 1% held: error rate of the new path above the old path's
	// 100%
}

func ExampleRegistry_LoadConfig() {
	reg, _ := rollout.NewRegistry()
	g, _ := rollout.New("checkout-v2")
	_ = reg.Register(g)
	_ = reg.Retire("power-peg", "repurposing forbidden: see Knight Capital, 2012")

	info, err := reg.LoadConfig(strings.NewReader(`{"version":"41","gates":[{"name":"checkout-v2","percent":5}]}`))
	fmt.Println(info.Version, err, g.Status().Percent)

	_, err = reg.LoadConfig(strings.NewReader(`{"version":"42","gates":[{"name":"power-peg","percent":100}]}`))
	fmt.Println(errors.Is(err, rollout.ErrRetired), reg.Config().Version)
	fmt.Println(err)
	// Output:
	// 41 <nil> 5
	// true 41
	// rollout: config rejected: gates[0] "power-peg": retired gate name (repurposing forbidden: see Knight Capital, 2012)
}

func ExampleRegistry_Watch() {
	dir, _ := os.MkdirTemp("", "rollout")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "rollout.json")
	_ = os.WriteFile(path, []byte(`{"version":"7","gates":[{"name":"checkout-v2","percent":50}]}`), 0o600)

	reg, _ := rollout.NewRegistry()
	g, _ := rollout.New("checkout-v2")
	_ = reg.Register(g)
	ctx, cancel := context.WithCancel(context.Background())
	err := reg.Watch(ctx, path, rollout.WithOnReload(func(info rollout.ConfigInfo, err error) {
		fmt.Println("loaded version", info.Version, err)
		cancel() // a service would keep watching until shutdown
	}))
	fmt.Println(err, g.Status().Percent)
	// Output:
	// loaded version 7 <nil>
	// context canceled 50
}

func ExampleHandler() {
	reg, _ := rollout.NewRegistry()
	g, _ := rollout.New("checkout-v2", rollout.WithPercent(5))
	_ = reg.Register(g)
	authorize := func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer s3cret" }

	mux := http.NewServeMux()
	mux.Handle("/admin/rollout/", http.StripPrefix("/admin/rollout", rollout.Handler(reg, authorize)))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, token := range []string{"", "Bearer s3cret"} {
		req, _ := http.NewRequest("POST", srv.URL+"/admin/rollout/checkout-v2/kill", strings.NewReader(`{"reason":"INC-1"}`))
		req.Header.Set("Authorization", token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, g.Status().Killed)
	}
	// Output:
	// 403 false
	// 200 true
}

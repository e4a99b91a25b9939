package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

// I4: a reviewed, tested, baked one-line change still took a service down;
// thousands of calls failed and the rollback took over ten minutes.
//
// Here the bad change is live for every user. A load of clients calls the
// service over loopback; at the moment of decision the operator contains it:
// without blastradius by a redeploy (simulated: 10 minutes, at the failure
// rate measured live), with blastradius by one kill through the admin handler.

const i4Redeploy = 10 * time.Minute

func runI4(ctx context.Context, cfg config) ([]figure, error) {
	reg, err := quietRegistry()
	if err != nil {
		return nil, err
	}
	gate, err := rollout.New("new-pricing", rollout.WithPercent(100), quietGate)
	if err != nil {
		return nil, err
	}
	if err := reg.Register(gate); err != nil {
		return nil, err
	}
	admin := adminServer(reg)
	defer admin.Close()

	var killReturned atomic.Int64 // unix nanos when the kill command was answered
	var badAfterKill atomic.Int64 // bad-path calls that started after that
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		start := time.Now().UnixNano()
		if gate.Enabled(user) {
			if k := killReturned.Load(); k != 0 && start > k {
				badAfterKill.Add(1)
			}
			http.Error(w, "pricing: nil price", http.StatusInternalServerError) // the bad change
			return
		}
		_, _ = w.Write([]byte("price: 1299\n"))
	}))
	defer svc.Close()

	// Load: 4 clients call the service until stopped.
	var (
		stop             atomic.Bool
		failed           atomic.Int64
		lastFailure      atomic.Int64
		wg               sync.WaitGroup
		decided          int64
		failedAtDecision int64
	)
	client := svc.Client()
	start := time.Now()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, svc.URL+"/price?user=u"+strconv.Itoa(w*1_000_000+i), nil)
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					failed.Add(1)
					lastFailure.Store(time.Now().UnixNano())
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // the bad change is live
	failedAtDecision = failed.Load()
	failRate := float64(failedAtDecision) / time.Since(start).Seconds()
	decided = time.Now().UnixNano()
	name := "new-pricing"
	if cfg.sabotage == "I4" { // the tour's own failure test: kill the wrong gate
		name = "new-pricing-v2"
	}
	killErr := adminPost(ctx, admin.URL, name+"/kill", `{"reason":"INC-4: pricing returns nil"}`)
	if killErr == nil {
		killReturned.Store(time.Now().UnixNano())
	}
	time.Sleep(200 * time.Millisecond) // keep the load on after containment
	stop.Store(true)
	wg.Wait()

	// Contained: the kill was accepted, no bad-path call started after it
	// returned, and the failures stopped (only calls already in flight may
	// fail after the kill). Containment time runs from the decision to the
	// last failed call.
	end := time.Now().UnixNano()
	contained := killErr == nil && badAfterKill.Load() == 0 && lastFailure.Load() < end-int64(100*time.Millisecond)
	containment := time.Duration(max(lastFailure.Load()-decided, 0))
	if !contained {
		containment = time.Duration(end - decided) // still failing when the run ended
	}
	failedAfter := failed.Load() - failedAtDecision
	return []figure{
		{Name: "time to containment (without: 10 min redeploy)", Without: i4Redeploy.Seconds(), With: containment.Seconds(), Unit: "s", Target: "<= 1", Pass: contained && containment <= time.Second},
		{Name: "failed calls after the decision", Without: failRate * i4Redeploy.Seconds(), With: float64(failedAfter), Unit: "calls", Target: fmt.Sprintf("<= %.0f (1 s of failures)", failRate), Pass: contained && float64(failedAfter) <= failRate},
		{Name: "bad-path calls started after the kill returned", Without: failRate * i4Redeploy.Seconds(), With: float64(badAfterKill.Load()), Unit: "calls", Target: "0", Pass: contained && badAfterKill.Load() == 0},
	}, nil
}

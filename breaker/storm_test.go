package breaker_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/internal/window"
)

// The retry-storm proof (incident I1), deterministic in a synctest bubble:
// fake time, no network.
//
// The downstream serves C = 300 requests per second. It fails (503) every
// attempt that arrives while more than C attempts arrived in the trailing
// second, and every attempt during a 10 s outage window. N = 20 clients each
// start a request every 100 ms (200 requests/s, open loop: a slow request
// does not delay the next one), with a 2 s timeout.
//
//   - naive: each client retries a 5xx 3 times, backoff 100 ms doubling with
//     ±50% jitter, no budget, no breaker.
//   - blastradius: each client has its own NewTransport(down, WithRetries(3),
//     WithOpenDuration(5s)), with the default budget (10% + 10/s) and
//     breaker (5 consecutive failures).
//
// Measured (go test -race -run TestRetryStorm -v ./breaker; the figures
// move by a few hundredths between runs because of jitter and scheduling,
// the asserted bounds do not):
//
//	client                    amplification in outage  recovery after outage
//	naive                     3.89×                    never (metastable: ~780 attempts/s > C)
//	blastradius               0.06×                    0.4 s (bound: open duration 5 s + one probe round)
//	budget only, per client   2.19×                    never (the 10/s floor per client doubles a 10 req/s client)
//	budget only, shared       1.15×                    0 s   (1 + 10% + 10/s ÷ 200 req/s)
//
// The two "budget only" rows use a breaker that never trips, to show what
// the budget alone does: its floor is per Budget, so many low-rate clients
// should share one (WithBudget) or lower it (WithBudgetMinPerSecond).
//
// Amplification is downstream attempts arriving during the outage divided
// by client requests started during it. Recovery is the time from the end
// of the outage to the start of the first 100 ms bucket from which every
// bucket's client success rate is at least 99%.
func TestRetryStorm(t *testing.T) {
	const (
		clients  = 20
		period   = 100 * time.Millisecond
		capacity = 300
		latency  = 5 * time.Millisecond
		warmup   = 10 * time.Second
		outage   = 10 * time.Second
		after    = 30 * time.Second
		openFor  = 5 * time.Second
		bucket   = 100 * time.Millisecond
		timeout  = 2 * time.Second
	)
	// Each scenario returns, inside the bubble, the constructor of one
	// client's RoundTripper.
	scenarios := []struct {
		name string
		rt   func(t *testing.T, down http.RoundTripper) func() http.RoundTripper
	}{
		{"naive", func(_ *testing.T, down http.RoundTripper) func() http.RoundTripper {
			return func() http.RoundTripper {
				return &naiveRetrier{base: down, retries: 3, initial: 100 * time.Millisecond}
			}
		}},
		{"blastradius", func(t *testing.T, down http.RoundTripper) func() http.RoundTripper {
			return func() http.RoundTripper {
				return mustTransport(t, down, breaker.WithRetries(3), breaker.WithOpenDuration(openFor))
			}
		}},
		// Not asserted against the 1.1× target: the budget alone, with a
		// breaker that never trips, per client and shared by all clients.
		{"budget only, per client", func(t *testing.T, down http.RoundTripper) func() http.RoundTripper {
			return func() http.RoundTripper {
				return mustTransport(t, down, breaker.WithRetries(3), breaker.WithConsecutiveFailures(1<<30))
			}
		}},
		{"budget only, shared", func(t *testing.T, down http.RoundTripper) func() http.RoundTripper {
			shared, err := breaker.NewBudget()
			if err != nil {
				t.Fatal(err)
			}
			return func() http.RoundTripper {
				return mustTransport(t, down, breaker.WithRetries(3, breaker.WithBudget(shared)), breaker.WithConsecutiveFailures(1<<30))
			}
		}},
	}
	results := map[string]stormResult{}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				epoch := time.Now()
				down := newDownstream(capacity, latency, epoch.Add(warmup), epoch.Add(warmup+outage))
				end := epoch.Add(warmup + outage + after)
				var (
					mu   sync.Mutex
					reqs []stormRequest
					wg   sync.WaitGroup
				)
				newClient := sc.rt(t, down)
				for c := range clients {
					rt := newClient()
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; ; i++ {
							start := epoch.Add(time.Duration(i)*period + time.Duration(c)*period/clients)
							if !start.Before(end) {
								return
							}
							time.Sleep(time.Until(start))
							wg.Add(1)
							go func() {
								defer wg.Done()
								ctx, cancel := context.WithTimeout(context.Background(), timeout)
								defer cancel()
								req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://down.test/", nil)
								resp, err := rt.RoundTrip(req)
								ok := err == nil && resp.StatusCode < 500
								if err == nil {
									_ = resp.Body.Close()
								}
								mu.Lock()
								reqs = append(reqs, stormRequest{start, ok})
								mu.Unlock()
							}()
						}
					}()
				}
				wg.Wait()

				outFrom, outTo := epoch.Add(warmup), epoch.Add(warmup+outage)
				var r stormResult
				var started int
				for _, q := range reqs {
					if !q.start.Before(outFrom) && q.start.Before(outTo) {
						started++
					}
					if q.start.Before(outFrom) && !q.ok {
						r.failedBefore++
					}
				}
				for _, at := range down.arrivals {
					if !at.Before(outFrom) && at.Before(outTo) {
						r.attempts++
					}
				}
				r.amplification = float64(r.attempts) / float64(started)
				// Success rate per bucket after the outage, by request start.
				n := int((end.Sub(outTo) + bucket - 1) / bucket)
				okN, all := make([]int, n), make([]int, n)
				for _, q := range reqs {
					if q.start.Before(outTo) {
						continue
					}
					i := int(q.start.Sub(outTo) / bucket)
					all[i]++
					if q.ok {
						okN[i]++
					}
				}
				r.recovered = true
				first := n
				for i := n - 1; i >= 0; i-- {
					if all[i] > 0 && float64(okN[i]) < 0.99*float64(all[i]) {
						break
					}
					first = i
				}
				if first == n || first > n-int(time.Second/bucket) {
					r.recovered = false // not stable for the last second
				}
				r.recovery = time.Duration(first) * bucket
				t.Logf("%s: %d requests in the outage, %d downstream attempts: amplification %.2f×; recovery %v (recovered %v); failures before the outage %d",
					sc.name, started, r.attempts, r.amplification, r.recovery, r.recovered, r.failedBefore)
				if r.failedBefore != 0 {
					t.Errorf("%d requests failed before the outage", r.failedBefore)
				}
				mu.Lock()
				results[sc.name] = r
				mu.Unlock()
			})
		})
	}
	naive, br := results["naive"], results["blastradius"]
	if naive.amplification < 3.5 {
		t.Errorf("naive amplification %.2f×, expected about 4×", naive.amplification)
	}
	if naive.recovered {
		t.Errorf("naive recovered after %v; the storm model expects it stuck", naive.recovery)
	}
	// The budget alone: retries <= 10% of requests + 10/s (+ a burst of 10).
	if a := results["budget only, shared"].amplification; a > 1+0.1+10.0/200+0.02 {
		t.Errorf("shared budget amplification %.2f× above its bound", a)
	}
	if a := results["budget only, per client"].amplification; a > 1+0.1+10.0/10+0.15 {
		t.Errorf("per-client budget amplification %.2f× above its bound", a)
	}
	if br.amplification > 1.1 {
		t.Errorf("blastradius amplification %.2f× > 1.1×", br.amplification)
	}
	// One probe round: the next request after the breaker turns half-open
	// (one client period), measured at bucket resolution.
	if limit := openFor + period + bucket; !br.recovered || br.recovery > limit {
		t.Errorf("blastradius recovery %v (recovered %v), want at most %v", br.recovery, br.recovered, limit)
	}
}

type stormRequest struct {
	start time.Time
	ok    bool
}

type stormResult struct {
	attempts      int
	amplification float64
	recovery      time.Duration
	recovered     bool
	failedBefore  int
}

// downstream fails every attempt while it is over capacity (more than
// capacity attempts arrived in the trailing second, this one included) or
// in its outage window.
type downstream struct {
	mu             sync.Mutex
	load           *window.Counter
	capacity       int64
	latency        time.Duration
	outFrom, outTo time.Time
	arrivals       []time.Time
}

func newDownstream(capacity int64, latency time.Duration, outFrom, outTo time.Time) *downstream {
	return &downstream{load: window.New(time.Second, 10, 1), capacity: capacity, latency: latency, outFrom: outFrom, outTo: outTo}
}

func (d *downstream) RoundTrip(r *http.Request) (*http.Response, error) {
	d.mu.Lock()
	now := time.Now()
	d.arrivals = append(d.arrivals, now)
	d.load.Add(now, 0, 1)
	var load [1]int64
	d.load.Sums(now, load[:])
	fail := load[0] > d.capacity || (!now.Before(d.outFrom) && now.Before(d.outTo))
	d.mu.Unlock()
	time.Sleep(d.latency)
	status := http.StatusOK
	if fail {
		status = http.StatusServiceUnavailable
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{},
		Body: http.NoBody, Request: r}, nil
}

// naiveRetrier retries every 5xx and transport error, with no budget and no
// breaker: what most hand-written clients do.
type naiveRetrier struct {
	base    http.RoundTripper
	retries int
	initial time.Duration
}

func (n *naiveRetrier) RoundTrip(r *http.Request) (*http.Response, error) {
	wait := n.initial
	for i := 0; ; i++ {
		resp, err := n.base.RoundTrip(r)
		if (err == nil && resp.StatusCode < 500) || i == n.retries {
			return resp, err
		}
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		d := time.Duration(float64(wait) * (0.5 + rand.Float64()))
		select {
		case <-r.Context().Done():
			return nil, r.Context().Err()
		case <-time.After(d):
		}
		wait *= 2
	}
}

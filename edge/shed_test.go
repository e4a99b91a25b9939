package edge_test

import (
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/internal/metrictest"
	"golang.org/x/time/rate"
)

// sleeper holds each request for d of (bubble) time.
func sleeper(d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(d) })
}

// burst sends n requests to h at once and returns the recorders.
func burst(h http.Handler, n int, path string) []*httptest.ResponseRecorder {
	recs := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = httptest.NewRecorder()
		wg.Go(func() { h.ServeHTTP(recs[i], httptest.NewRequest("GET", path, nil)) })
	}
	wg.Wait()
	return recs
}

func codes(recs []*httptest.ResponseRecorder) map[int]int {
	m := map[int]int{}
	for _, r := range recs {
		m[r.Code]++
	}
	return m
}

func TestShedConcurrency(t *testing.T) {
	tests := []struct {
		name                     string
		opts                     []edge.ShedOption
		n                        int
		ok, concurrency, timeout int
		elapsed                  time.Duration
		retryAfter               string
	}{
		{"cap, no queue", []edge.ShedOption{edge.WithMaxInFlight(2)}, 10, 2, 8, 0, time.Second, "1"},
		{"queue times out", []edge.ShedOption{edge.WithMaxInFlight(2, edge.WithQueue(2, 500*time.Millisecond))}, 10, 2, 6, 2, time.Second, "1"},
		{"queue waits long enough", []edge.ShedOption{edge.WithMaxInFlight(2, edge.WithQueue(2, 2*time.Second))}, 10, 4, 6, 0, 2 * time.Second, "1"},
		{"deep queue", []edge.ShedOption{edge.WithMaxInFlight(3, edge.WithQueue(100, 2500*time.Millisecond))}, 10, 9, 0, 1, 3 * time.Second, "1"},
		{"retry after rounds up", []edge.ShedOption{edge.WithMaxInFlight(1, edge.WithRetryAfter(1500*time.Millisecond))}, 3, 1, 2, 0, time.Second, "2"},
		{"retry after capped", []edge.ShedOption{edge.WithMaxInFlight(1, edge.WithRetryAfter(25*time.Hour))}, 2, 1, 1, 0, time.Second, "86400"},
		{"retry after max duration", []edge.ShedOption{edge.WithMaxInFlight(1, edge.WithRetryAfter(math.MaxInt64))}, 2, 1, 1, 0, time.Second, "86400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := metrictest.New(t)
				h := edge.Shed(append(tt.opts, edge.WithMeterProvider(m), edge.WithLogger(slog.New(&logtest.Records{})))...)(sleeper(time.Second))
				start := time.Now()
				recs := burst(h, tt.n, "/")
				if el := time.Since(start); el != tt.elapsed {
					t.Errorf("elapsed %v, want %v", el, tt.elapsed)
				}
				c := codes(recs)
				if c[200] != tt.ok || c[503] != tt.concurrency+tt.timeout || len(c) > 2 {
					t.Errorf("codes %v, want %d×200 and %d×503", c, tt.ok, tt.concurrency+tt.timeout)
				}
				for _, r := range recs {
					if r.Code == 503 && r.Header().Get("Retry-After") != tt.retryAfter {
						t.Errorf("503 Retry-After %q, want %q", r.Header().Get("Retry-After"), tt.retryAfter)
					}
				}
				if n := m.Sum("blastradius.edge.shed", "reason", "concurrency"); n != int64(tt.concurrency) {
					t.Errorf("shed{concurrency} = %d, want %d", n, tt.concurrency)
				}
				if n := m.Sum("blastradius.edge.shed", "reason", "queue_timeout"); n != int64(tt.timeout) {
					t.Errorf("shed{queue_timeout} = %d, want %d", n, tt.timeout)
				}
			})
		})
	}
}

func TestShedRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := metrictest.New(t)
		// 0.4 requests/s, burst 2: a third request must wait 2.5 s for a token.
		h := edge.Shed(edge.WithRate(rate.Limit(0.4), 2), edge.WithMeterProvider(m), edge.WithLogger(slog.New(&logtest.Records{})))(sleeper(0))
		c := codes(burst(h, 5, "/"))
		if c[200] != 2 || c[429] != 3 {
			t.Fatalf("codes %v, want 2×200, 3×429", c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 429 || rec.Header().Get("Retry-After") != "3" {
			t.Fatalf("%d Retry-After %q, want 429 and 3 (2.5 s rounded up)", rec.Code, rec.Header().Get("Retry-After"))
		}
		time.Sleep(2 * time.Second) // 0.8 token: 0.5 s left
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 429 || rec.Header().Get("Retry-After") != "1" {
			t.Fatalf("%d Retry-After %q, want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
		}
		time.Sleep(500 * time.Millisecond)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 200 {
			t.Fatalf("after the advertised wait: %d, want 200", rec.Code)
		}
		if n := m.Sum("blastradius.edge.shed", "reason", "rate"); n != 5 {
			t.Errorf("shed{rate} = %d, want 5", n)
		}
	})
}

// TestShedRateAndConcurrencyWithBypass: the rate limit answers first
// (429), the limit on requests in flight next (503 with Retry-After), and
// bypassed requests skip both; with the static cap and with the adaptive
// limit (which starts at 1 request in flight).
func TestShedRateAndConcurrencyWithBypass(t *testing.T) {
	for _, tc := range []struct {
		name       string
		limit      edge.ShedOption
		ok         int
		retryAfter string // of a 503; "" means any
	}{
		{"static cap 3", edge.WithMaxInFlight(3), 3, ""},
		{"adaptive", edge.WithAdaptiveLimit(edge.WithRetryAfter(3 * time.Second)), 1, "3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := metrictest.New(t)
				h := edge.Shed(
					edge.WithRate(10, 10), tc.limit,
					edge.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }),
					edge.WithMeterProvider(m), edge.WithLogger(slog.New(&logtest.Records{})),
				)(sleeper(time.Second))
				var api, health []*httptest.ResponseRecorder
				var wg sync.WaitGroup
				wg.Go(func() { api = burst(h, 20, "/api") })
				wg.Go(func() { health = burst(h, 5, "/healthz") })
				wg.Wait()
				shed := 10 - tc.ok
				if c := codes(api); c[200] != tc.ok || c[503] != shed || c[429] != 10 {
					t.Errorf("api codes %v, want %d×200, %d×503, 10×429", c, tc.ok, shed)
				}
				if c := codes(health); c[200] != 5 {
					t.Errorf("health codes %v, want 5×200 (bypass)", c)
				}
				for _, r := range api {
					got := r.Header().Get("Retry-After")
					if r.Code != 200 && got == "" || r.Code == 503 && tc.retryAfter != "" && got != tc.retryAfter {
						t.Errorf("%d with Retry-After %q, want %q", r.Code, got, tc.retryAfter)
					}
				}
				if a, b := m.Sum("blastradius.edge.shed", "reason", "rate"), m.Sum("blastradius.edge.shed", "reason", "concurrency"); a != 10 || b != int64(shed) {
					t.Errorf("shed rate %d, concurrency %d; want 10, %d", a, b, shed)
				}
			})
		})
	}
}

func TestShedQueueClientGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := edge.Shed(edge.WithMaxInFlight(1, edge.WithQueue(1, time.Hour)), edge.WithLogger(slog.New(&logtest.Records{})))(sleeper(time.Minute))
		var first sync.WaitGroup
		first.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) })
		defer first.Wait()
		synctest.Wait()
		req, cancel := contextWithCancel(httptest.NewRequest("GET", "/", nil))
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		start := time.Now()
		go func() { h.ServeHTTP(rec, req); close(done) }()
		time.Sleep(time.Second)
		cancel()
		<-done
		if el := time.Since(start); el != time.Second {
			t.Errorf("answered after %v, want 1s (when the client left)", el)
		}
		if rec.Code != 503 {
			t.Fatalf("code %d, want 503 once the client left", rec.Code)
		}
	})
}

// hammer sends goroutines×n requests to h at once and returns the count of
// each status code and of each Retry-After value.
func hammer(h http.Handler, goroutines, n int) (codes, retryAfter map[string]int) {
	var mu sync.Mutex
	codes, retryAfter = map[string]int{}, map[string]int{}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range n {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
				mu.Lock()
				codes[strconv.Itoa(rec.Code)]++
				if v := rec.Header().Get("Retry-After"); v != "" {
					retryAfter[v]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return codes, retryAfter
}

// TestShedRateNoDebt: a refused request takes no token. A storm of 16,000
// refused requests with the clock frozen leaves the bucket as it was, so one
// second later exactly rate×1 s requests are admitted, and every Retry-After
// is the real wait for one token (0.1 s, rounded up to 1).
func TestShedRateNoDebt(t *testing.T) {
	clk := fakeclock.New()
	m := metrictest.New(t)
	h := edge.Shed(edge.WithRate(10, 10), edge.WithClock(clk.Now), edge.WithMeterProvider(m),
		edge.WithLogger(slog.New(slog.DiscardHandler)))(sleeper(0))
	codes, retry := hammer(h, 16, 1000)
	if codes["200"] != 10 || codes["429"] != 15990 {
		t.Fatalf("storm: codes %v, want 10×200 and 15990×429", codes)
	}
	if retry["1"] != 15990 {
		t.Errorf("storm: Retry-After %v, want 15990×1", retry)
	}
	clk.Advance(time.Second)
	codes, retry = hammer(h, 1, 20)
	if codes["200"] != 10 || codes["429"] != 10 {
		t.Errorf("1 s after the storm: codes %v, want 10×200 and 10×429", codes)
	}
	if retry["1"] != 10 {
		t.Errorf("1 s after the storm: Retry-After %v, want 10×1", retry)
	}
	if n := m.Sum("blastradius.edge.shed", "reason", "rate"); n != 16000 {
		t.Errorf("shed{rate} = %d, want 16000", n)
	}
}

// TestShedRateMatchesLimiter: under concurrent load, Shed admits what a bare
// rate.Limiter admits on the same clock. The clock moves in uneven steps over
// one second; within each step 8 goroutines send 10 requests each.
func TestShedRateMatchesLimiter(t *testing.T) {
	clk := fakeclock.New()
	h := edge.Shed(edge.WithRate(50, 5), edge.WithClock(clk.Now), edge.WithLogger(slog.New(slog.DiscardHandler)))(sleeper(0))
	bare := rate.NewLimiter(50, 5)
	var shed, want int
	steps := []time.Duration{3 * time.Millisecond, 7 * time.Millisecond, 13 * time.Millisecond, 17 * time.Millisecond}
	for elapsed, i := time.Duration(0), 0; elapsed < time.Second; i++ {
		codes, _ := hammer(h, 8, 10)
		shed += codes["200"]
		var n atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 10 {
					if bare.AllowN(clk.Now(), 1) {
						n.Add(1)
					}
				}
			})
		}
		wg.Wait()
		want += int(n.Load())
		d := steps[i%len(steps)]
		clk.Advance(d)
		elapsed += d
	}
	if shed < want-1 || shed > want+1 {
		t.Errorf("Shed admitted %d, a bare rate.Limiter %d: want within ±1", shed, want)
	}
	t.Logf("Shed admitted %d, a bare rate.Limiter %d", shed, want)
}

// TestShedRateRetryAfterCapped: the 429's Retry-After is the wait for one
// token in whole seconds, rounded up, capped at MaxRetryAfter (one day) and
// never wrapped, however slow the rate.
func TestShedRateRetryAfterCapped(t *testing.T) {
	tests := []struct {
		limit rate.Limit
		want  string
	}{
		{1, "1"},
		{rate.Every(time.Hour), "3600"},
		{rate.Every(time.Hour + time.Millisecond), "3601"},
		{rate.Every(edge.MaxRetryAfter), "86400"},
		{rate.Every(100 * time.Hour), "86400"},
		{1e-10, "86400"}, // 1e10 s: beyond time.Duration
		{rate.Limit(math.SmallestNonzeroFloat64), "86400"},
	}
	for _, tt := range tests {
		clk := fakeclock.New()
		h := edge.Shed(edge.WithRate(tt.limit, 1), edge.WithClock(clk.Now), edge.WithLogger(slog.New(slog.DiscardHandler)))(sleeper(0))
		codes, retry := hammer(h, 1, 2)
		if codes["200"] != 1 || codes["429"] != 1 || retry[tt.want] != 1 {
			t.Errorf("WithRate(%v, 1): codes %v, Retry-After %v; want one 200, one 429 with Retry-After %s", float64(tt.limit), codes, retry, tt.want)
		}
	}
}

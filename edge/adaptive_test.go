package edge_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/internal/metrictest"
)

// simServer is a handler of a given capacity: it runs at most slots
// requests at once, each for work of (bubble) time, and queues the others
// first come first served, as a fair pool of connections does. Its latency
// is work while fewer than slots requests are in it, and grows with the
// queue beyond.
type simServer struct {
	mu      sync.Mutex
	slots   int
	busy    int
	work    time.Duration
	waiters []chan struct{}
}

func newSimServer(slots int, work time.Duration) *simServer {
	return &simServer{slots: slots, work: work}
}

func (s *simServer) set(slots int, work time.Duration) {
	s.mu.Lock()
	s.slots, s.work = slots, work
	s.handOff()
	s.mu.Unlock()
}

// handOff gives free slots to the longest waiting requests.
func (s *simServer) handOff() {
	for s.busy < s.slots && len(s.waiters) > 0 {
		s.busy++
		close(s.waiters[0])
		s.waiters = s.waiters[1:]
	}
}

func (s *simServer) ServeHTTP(http.ResponseWriter, *http.Request) {
	s.mu.Lock()
	if s.busy < s.slots && len(s.waiters) == 0 {
		s.busy++
	} else {
		ch := make(chan struct{})
		s.waiters = append(s.waiters, ch)
		s.mu.Unlock()
		<-ch // handOff counted the slot as ours
		s.mu.Lock()
	}
	work := s.work
	s.mu.Unlock()
	time.Sleep(work)
	s.mu.Lock()
	s.busy--
	s.handOff()
	s.mu.Unlock()
}

// outcome is one request of an open-loop run.
type outcome struct {
	at, latency time.Duration // since the run started
	code        int
	retryAfter  string
}

// openLoop sends a request to h every interval for d, whatever the answers
// (an open loop, as a load generator does), and returns the outcomes by
// start time once all have finished.
func openLoop(h http.Handler, interval, d time.Duration) []outcome {
	var (
		mu  sync.Mutex
		out []outcome
		wg  sync.WaitGroup
	)
	start := time.Now()
	for at := time.Duration(0); at < d; at += interval {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			t0 := time.Now()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			o := outcome{at: t0.Sub(start), latency: time.Since(t0), code: rec.Code, retryAfter: rec.Header().Get("Retry-After")}
			mu.Lock()
			out = append(out, o)
			mu.Unlock()
		})
		time.Sleep(interval)
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b outcome) int { return int(a.at - b.at) })
	return out
}

// phaseStats summarises the outcomes that started in [from, to).
type phaseStats struct {
	offered, ok, shed int
	p99               time.Duration
	badRefusals       int // refusals other than 503 with Retry-After: 1
}

func stats(out []outcome, from, to time.Duration) phaseStats {
	var s phaseStats
	var lat []time.Duration
	for _, o := range out {
		if o.at < from || o.at >= to {
			continue
		}
		s.offered++
		switch {
		case o.code == 200:
			s.ok++
			lat = append(lat, o.latency)
		case o.code == 503 && o.retryAfter == "1":
			s.shed++
		default:
			s.badRefusals++
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		s.p99 = lat[(len(lat)*99)/100]
	}
	return s
}

// TestAdaptiveLimitControlLoop runs the adaptive limit against a simulated
// server under open-loop load, in a synctest bubble, so every latency is
// exact and every run the same. The server's capacity changes between
// phases (it loses half its slots, or each request takes twice as long,
// then recovers); one second into each phase, the limit must have settled:
// goodput at least 90% of the phase's capacity, p99 of admitted requests at
// most 3× the phase's no-load latency, and every refusal a fast 503 with
// Retry-After. Under half the capacity nothing is shed after start-up.
func TestAdaptiveLimitControlLoop(t *testing.T) {
	const work = 10 * time.Millisecond
	type phase struct {
		slots int
		work  time.Duration
	}
	// 4 slots × 10 ms is 400 requests/s; 1.23 ms between requests offers
	// 813/s, about 2× (4× once the capacity halves); 4.9 ms offers 0.5×
	// (2× of one slot).
	tests := []struct {
		name     string
		interval time.Duration // between two requests
		phases   []phase
	}{
		{"slots halve and recover", 1230 * time.Microsecond, []phase{{4, work}, {2, work}, {4, work}}},
		{"work doubles and recovers", 1230 * time.Microsecond, []phase{{4, work}, {4, 2 * work}, {4, work}}},
		{"half load", 4900 * time.Microsecond, []phase{{4, work}}},
		{"one slot, 2× load", 4900 * time.Microsecond, []phase{{1, work}}}, // the limit needs one waiting request
	}
	const phaseLen, settle = 3 * time.Second, time.Second
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := metrictest.New(t)
				srv := newSimServer(tt.phases[0].slots, tt.phases[0].work)
				h := edge.Shed(edge.WithAdaptiveLimit(), edge.WithMeterProvider(m), edge.WithLogger(slog.New(slog.DiscardHandler)))(srv)
				go func() { // the capacity changes under load
					for _, p := range tt.phases[1:] {
						time.Sleep(phaseLen)
						srv.set(p.slots, p.work)
					}
				}()
				out := openLoop(h, tt.interval, time.Duration(len(tt.phases))*phaseLen)
				for i, p := range tt.phases {
					from := time.Duration(i)*phaseLen + settle
					s := stats(out, from, time.Duration(i+1)*phaseLen)
					capacity := float64(p.slots) / p.work.Seconds() * (phaseLen - settle).Seconds()
					offered := float64(s.offered)
					t.Logf("phase %d (%d slots × %v): offered %d, ok %d (%.0f%% of capacity), shed %d, p99 %v",
						i, p.slots, p.work, s.offered, s.ok, 100*float64(s.ok)/capacity, s.shed, s.p99)
					if want := min(offered, 0.9*capacity); float64(s.ok) < want {
						t.Errorf("phase %d: %d requests served, want at least %.0f (90%% of capacity)", i, s.ok, want)
					}
					if s.p99 > 3*p.work {
						t.Errorf("phase %d: p99 %v, want at most %v (3× the no-load latency)", i, s.p99, 3*p.work)
					}
					if offered < capacity && s.shed > 0 {
						t.Errorf("phase %d: %d shed under capacity, want none", i, s.shed)
					}
					if s.badRefusals > 0 {
						t.Errorf("phase %d: %d refusals were not a 503 with Retry-After: 1", i, s.badRefusals)
					}
				}
				last := tt.phases[len(tt.phases)-1]
				if v, _ := m.Gauge("blastradius.edge.shed.no_load_latency"); v != last.work.Seconds() {
					t.Errorf("no_load_latency gauge %v s, want %v s", v, last.work.Seconds())
				}
			})
		})
	}
}

// TestAdaptiveLimitGaugesAndLogs: under 2× load the gauges show the limit
// near the capacity (4 slots), the requests in flight within it, the
// window's latency between the no-load latency and 3× it, and the no-load
// latency itself; every limit change of half or more is logged through the
// log budget (logbudget's defaults: 10 per minute), however many there are.
func TestAdaptiveLimitGaugesAndLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := metrictest.New(t)
		logs := &logtest.Records{}
		srv := newSimServer(4, 10*time.Millisecond)
		h := edge.Shed(edge.WithAdaptiveLimit(), edge.WithMeterProvider(m), edge.WithLogger(slog.New(logs)))(srv)
		go func() { // the capacity swings every 500 ms: many limit changes
			for i := range 10 {
				time.Sleep(500 * time.Millisecond)
				srv.set(4>>((i+1)%2), 10*time.Millisecond) // 2, 4, 2, …, 4
			}
		}()
		var wg sync.WaitGroup
		wg.Go(func() { openLoop(h, 1230*time.Microsecond, 7*time.Second) })
		time.Sleep(6500 * time.Millisecond) // capacity back at 4 slots for 1.5 s
		gauge := func(name string) float64 {
			v, ok := m.Gauge(name)
			if !ok {
				t.Fatalf("no %s", name)
			}
			return v
		}
		limit, inFlight := gauge("blastradius.edge.shed.limit"), gauge("blastradius.edge.shed.inflight")
		latency, noLoad := gauge("blastradius.edge.shed.latency"), gauge("blastradius.edge.shed.no_load_latency")
		wg.Wait()
		t.Logf("limit %v, in flight %v, latency %v s, no-load latency %v s", limit, inFlight, latency, noLoad)
		if limit < 4 || limit > 12 {
			t.Errorf("limit %v, want within [4, 12] (1× to 3× the capacity)", limit)
		}
		if inFlight < 1 || inFlight > limit {
			t.Errorf("in flight %v, want within [1, limit %v]", inFlight, limit)
		}
		if latency < 0.010 || latency > 0.030 {
			t.Errorf("latency %v s, want within [10 ms, 30 ms]", latency)
		}
		if noLoad != 0.010 {
			t.Errorf("no-load latency %v s, want 0.01", noLoad)
		}
		changes := logs.Count("edge: concurrency limit changed", "", "")
		t.Logf("%d limit changes logged, %d records suppressed", changes, m.Total(suppressedMetric))
		if changes != 10 {
			t.Errorf("%d limit changes logged, want 10 (more happened; the budget passes 10 a minute)", changes)
		}
		for _, r := range logs.All() {
			if r.Msg == "edge: concurrency limit changed" && (r.Level != slog.LevelInfo || r.Attrs["limit"] == "" || r.Attrs["previous"] == "" ||
				r.Attrs["latency"] == "" || r.Attrs["no_load_latency"] == "") {
				t.Errorf("record %+v: want Info with limit, previous, latency and no_load_latency", r)
			}
		}
	})
}

// TestStaticLimitGauges: with WithMaxInFlight the limit gauge is the cap and
// the in-flight gauge counts the requests holding a slot.
func TestStaticLimitGauges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := metrictest.New(t)
		h := edge.Shed(edge.WithMaxInFlight(5), edge.WithMeterProvider(m), edge.WithLogger(slog.New(slog.DiscardHandler)))(sleeper(time.Second))
		var wg sync.WaitGroup
		wg.Go(func() { burst(h, 3, "/") })
		synctest.Wait()
		if v, _ := m.Gauge("blastradius.edge.shed.limit"); v != 5 {
			t.Errorf("limit %v, want 5", v)
		}
		if v, _ := m.Gauge("blastradius.edge.shed.inflight"); v != 3 {
			t.Errorf("in flight %v, want 3", v)
		}
		wg.Wait()
		if v, _ := m.Gauge("blastradius.edge.shed.inflight"); v != 0 {
			t.Errorf("in flight after the burst %v, want 0", v)
		}
		if _, ok := m.Gauge("blastradius.edge.shed.latency"); ok {
			t.Error("a static cap reports a latency gauge")
		}
	})
}

// TestAdaptiveLimitWithQueue: with a queue the adaptive limit still settles
// near the capacity, because only the time from admission counts; requests
// over it wait, and those that wait too long are counted as queue timeouts.
func TestAdaptiveLimitWithQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := metrictest.New(t)
		srv := newSimServer(4, 10*time.Millisecond)
		h := edge.Shed(edge.WithAdaptiveLimit(edge.WithQueue(8, 20*time.Millisecond)),
			edge.WithMeterProvider(m), edge.WithLogger(slog.New(slog.DiscardHandler)))(srv)
		out := openLoop(h, 1230*time.Microsecond, 3*time.Second)
		s := stats(out, time.Second, 3*time.Second)
		t.Logf("ok %d, shed %d, p99 %v", s.ok, s.shed, s.p99)
		if s.ok < 720 { // 90% of 400/s over 2 s
			t.Errorf("%d served, want at least 720", s.ok)
		}
		if s.p99 > 30*time.Millisecond+20*time.Millisecond {
			t.Errorf("p99 %v, want at most 50 ms (3× the no-load latency plus the queue's wait)", s.p99)
		}
		if n := m.Sum("blastradius.edge.shed", "reason", "queue_timeout"); n == 0 {
			t.Error("no queue timeouts counted")
		}
		if v, _ := m.Gauge("blastradius.edge.shed.limit"); v < 4 || v > 12 {
			t.Errorf("limit %v, want within [4, 12]", v)
		}
	})
}

// TestAdaptiveLimitCountsSlowRequests: the latency a window measures counts
// every request that finished in it, also those admitted before it began,
// so requests slower than a window are not left out: with one request in
// ten taking 500 ms and the others 1 ms, the measured latency is their
// mean, 50.9 ms.
func TestAdaptiveLimitCountsSlowRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := metrictest.New(t)
		var n atomic.Int64
		h := edge.Shed(edge.WithAdaptiveLimit(edge.WithLimitBounds(100, 1000)), edge.WithMeterProvider(m),
			edge.WithLogger(slog.New(slog.DiscardHandler)))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			if n.Add(1)%10 == 0 {
				time.Sleep(500 * time.Millisecond)
			} else {
				time.Sleep(time.Millisecond)
			}
		}))
		openLoop(h, 5*time.Millisecond, 5*time.Second)
		v, _ := m.Gauge("blastradius.edge.shed.latency")
		if v < 0.040 || v > 0.065 {
			t.Errorf("latency %v s, want about 0.0509 (the mean of 9 × 1 ms and 500 ms)", v)
		}
	})
}

// TestAdaptiveLimitLongWindowLatency: a window whose latencies add up to
// more than 4.9 hours (600 requests of 30 s, as when a dependency hangs
// under a limit of 300) still measures their mean, 30 s, rather than a
// wrapped-around sum that would read as a fast server.
func TestAdaptiveLimitLongWindowLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := metrictest.New(t)
		h := edge.Shed(edge.WithAdaptiveLimit(edge.WithLimitBounds(300, 300), edge.WithQueue(300, time.Hour)),
			edge.WithMeterProvider(m), edge.WithLogger(slog.New(slog.DiscardHandler)))(
			http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					time.Sleep(30 * time.Second)
				}
			}))
		burst(h, 10, "/fast") // the first window, the no-load probe, needs 10 samples
		if v, _ := m.Gauge("blastradius.edge.shed.no_load_latency"); v == 0 {
			t.Fatal("no-load probe did not close")
		}
		burst(h, 600, "/slow") // the next window needs 2 × 300 samples
		if v, ok := m.Gauge("blastradius.edge.shed.latency"); !ok || v != 30 {
			t.Errorf("latency %v s (reported %v), want 30", v, ok)
		}
	})
}

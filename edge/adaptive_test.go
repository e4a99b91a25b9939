package edge_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/metrictest"
)

// simServer is a handler of a given capacity: it runs at most slots
// requests at once, each for work of (bubble) time, and queues the others
// in arrival order, as a handler behind a pool of connections does. Its
// latency is work while fewer than slots requests are in it, and grows with
// the queue beyond.
type simServer struct {
	mu    sync.Mutex
	cond  *sync.Cond
	slots int
	busy  int
	work  time.Duration
}

func newSimServer(slots int, work time.Duration) *simServer {
	s := &simServer{slots: slots, work: work}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *simServer) set(slots int, work time.Duration) {
	s.mu.Lock()
	s.slots, s.work = slots, work
	s.cond.Broadcast()
	s.mu.Unlock()
}

func (s *simServer) ServeHTTP(http.ResponseWriter, *http.Request) {
	s.mu.Lock()
	for s.busy >= s.slots {
		s.cond.Wait()
	}
	s.busy++
	work := s.work
	s.mu.Unlock()
	time.Sleep(work)
	s.mu.Lock()
	s.busy--
	s.cond.Signal()
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
	// 813/s, about 2× (4× once the capacity halves); 4.9 ms offers 0.5×.
	tests := []struct {
		name     string
		interval time.Duration // between two requests
		phases   []phase
	}{
		{"slots halve and recover", 1230 * time.Microsecond, []phase{{4, work}, {2, work}, {4, work}}},
		{"work doubles and recovers", 1230 * time.Microsecond, []phase{{4, work}, {4, 2 * work}, {4, work}}},
		{"half load", 4900 * time.Microsecond, []phase{{4, work}}},
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

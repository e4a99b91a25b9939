// Package server is the server side of the overload benchmark: two handlers
// of a known kind of capacity, a control endpoint that changes their
// capacity mid-run, and the loop that serves them on a loopback port until
// the driver closes the server's standard input.
//
//   - slot: a handler bound by a pool of slots (a connection pool, a
//     dependency): at most Slots requests run at once, each sleeping Work;
//     the others queue inside the handler, in arrival order. Capacity
//     halves by halving the slots; the no-load latency stays Work.
//   - cpu: a CPU-bound handler: each request computes for about Work of one
//     core's time. Capacity halves by doubling the computation; the no-load
//     latency doubles too.
package server

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config selects the handler.
type Config struct {
	Handler string        // "slot" or "cpu"
	Slots   int           // slot: requests at once
	Work    time.Duration // slot: sleep; cpu: computation, calibrated on one core
	Iters   int64         // cpu: the computation in iterations of Spin, if > 0 (the same in every process)
}

// Flags registers the handler's flags on fs.
func Flags(fs *flag.FlagSet) *Config {
	c := &Config{}
	fs.StringVar(&c.Handler, "handler", "slot", "slot (a pool of slots, each sleeping -work) or cpu (-work of computation)")
	fs.IntVar(&c.Slots, "slots", 8, "slot handler: requests at once")
	fs.DurationVar(&c.Work, "work", 5*time.Millisecond, "slot: sleep per request; cpu: computation per request")
	fs.Int64Var(&c.Iters, "iters", 0, "cpu: computation per request in iterations (default: what takes -work here)")
	return c
}

// Handler serves the benchmark's work with a capacity that SetFactor
// scales.
type Handler interface {
	http.Handler
	// SetFactor sets the capacity to f times the configured one.
	SetFactor(f float64)
}

// New returns the handler cfg selects.
func New(cfg Config) (Handler, error) {
	if cfg.Work <= 0 {
		return nil, fmt.Errorf("server: -work %v must be > 0", cfg.Work)
	}
	switch cfg.Handler {
	case "slot":
		if cfg.Slots <= 0 {
			return nil, fmt.Errorf("server: -slots %d must be > 0", cfg.Slots)
		}
		return &slotHandler{base: cfg.Slots, slots: cfg.Slots, work: cfg.Work}, nil
	case "cpu":
		c := &cpuHandler{base: cfg.Iters}
		if c.base <= 0 {
			c.base = IterationsFor(cfg.Work)
		}
		c.iters.Store(c.base)
		return c, nil
	}
	return nil, fmt.Errorf("server: unknown -handler %q (slot or cpu)", cfg.Handler)
}

var ok = []byte("ok\n")

// slotHandler runs at most slots requests at once and hands a freed slot
// to the longest-waiting request, as a fair pool does (a channel
// semaphore, or a database pool's queue): no newcomer overtakes a waiter.
type slotHandler struct {
	base int
	work time.Duration

	mu      sync.Mutex
	slots   int
	busy    int
	waiters []chan struct{} // in arrival order
}

func (s *slotHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.acquire()
	time.Sleep(s.work)
	s.release()
	_, _ = w.Write(ok)
}

func (s *slotHandler) acquire() {
	s.mu.Lock()
	if s.busy < s.slots && len(s.waiters) == 0 {
		s.busy++
		s.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	s.waiters = append(s.waiters, ch)
	s.mu.Unlock()
	<-ch // the releaser counted the slot as ours
}

func (s *slotHandler) release() {
	s.mu.Lock()
	s.busy--
	s.handOff()
	s.mu.Unlock()
}

// handOff gives free slots to waiters, first come first served.
func (s *slotHandler) handOff() {
	for s.busy < s.slots && len(s.waiters) > 0 {
		s.busy++
		close(s.waiters[0])
		s.waiters = s.waiters[1:]
	}
}

func (s *slotHandler) SetFactor(f float64) {
	s.mu.Lock()
	s.slots = max(1, int(math.Round(float64(s.base)*f)))
	s.handOff()
	s.mu.Unlock()
}

type cpuHandler struct {
	base  int64
	iters atomic.Int64
}

// sink keeps the computation from being optimised away.
var sink atomic.Uint64

// Spin computes for n iterations.
func Spin(n int64) {
	x := uint64(n) | 1
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	sink.Store(x)
}

// IterationsFor returns the iterations of Spin that take about d on one
// core, from the best of a few timed runs.
func IterationsFor(d time.Duration) int64 {
	const probe = 1 << 20
	best := time.Duration(math.MaxInt64)
	for range 5 {
		start := time.Now()
		Spin(probe)
		best = min(best, time.Since(start))
	}
	return max(1, int64(float64(probe)*float64(d)/float64(best)))
}

func (c *cpuHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	Spin(c.iters.Load())
	_, _ = w.Write(ok)
}

func (c *cpuHandler) SetFactor(f float64) {
	c.iters.Store(max(1, int64(float64(c.base)/f)))
}

// Run serves mw(h) at / and the control endpoint at /control on a loopback
// port, prints "listening ADDR" on out, and returns when in reaches EOF (the
// driver closed it, or exited). GET /control?factor=F sets the capacity to F
// times the configured one; GET /stats answers stats(), if not nil.
func Run(h Handler, mw func(http.Handler) http.Handler, stats func() string, in io.Reader, out io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	work := http.Handler(h)
	if mw != nil {
		work = mw(h)
	}
	mux.Handle("/", work)
	mux.HandleFunc("/control", func(w http.ResponseWriter, r *http.Request) {
		f, err := strconv.ParseFloat(r.URL.Query().Get("factor"), 64)
		if err != nil || !(f > 0) || math.IsInf(f, 0) {
			http.Error(w, "factor must be a positive number", http.StatusBadRequest)
			return
		}
		h.SetFactor(f)
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		if stats != nil {
			_, _ = io.WriteString(w, stats())
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	if _, err := fmt.Fprintf(out, "listening %s\n", ln.Addr()); err != nil {
		_ = srv.Close()
		return err
	}
	_, _ = io.Copy(io.Discard, bufio.NewReader(in)) // until the driver closes stdin
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Main runs a server binary: it parses the flags of the handler and those
// register adds, builds the handler and the middleware that setup returns,
// and serves them until stdin closes.
func Main(name string, register func(*flag.FlagSet) func() (mw func(http.Handler) http.Handler, stats func() string, err error)) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	cfg := Flags(fs)
	setup := register(fs)
	_ = fs.Parse(os.Args[1:])
	err := func() error {
		h, err := New(*cfg)
		if err != nil {
			return err
		}
		mw, stats, err := setup()
		if err != nil {
			return err
		}
		return Run(h, mw, stats, os.Stdin, os.Stdout)
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

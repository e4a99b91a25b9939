// Command fleetbench measures how a fleet synced through Redis behaves on
// this machine: publish-to-applied latency over 8 instances (each with its
// own connection), heal-to-applied after a partition, a hung server
// (SIGSTOP) and a FLUSHALL. It starts its own redis-server on a free
// loopback port and stops it at the end.
//
//	go run ./fleet/redisfleet/cmd/fleetbench [-publishes 200] [-partition 2s] [-hang 30s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet"
	"github.com/blastradius/blastradius/fleet/redisfleet/internal/redistest"
	"github.com/blastradius/blastradius/rollout"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func main() {
	// Once per process: these set the global loggers of slog and go-redis.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	redis.SetLogger(quietLogger{})
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		os.Exit(1)
	}
}

type config struct {
	instances int
	publishes int
	partition time.Duration
	hang      time.Duration
	rounds    int
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fleetbench", flag.ContinueOnError)
	var c config
	fs.IntVar(&c.instances, "instances", 8, "instances, each with its own Redis connection")
	fs.IntVar(&c.publishes, "publishes", 200, "alternating kill/resume publishes")
	fs.DurationVar(&c.partition, "partition", 2*time.Second, "length of each partition")
	fs.IntVar(&c.rounds, "rounds", 5, "partitions to measure")
	fs.DurationVar(&c.hang, "hang", 30*time.Second, "length of the SIGSTOP hang (0 skips it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	path, err := redistest.Lookup()
	if err != nil {
		return err
	}
	srv, err := redistest.Start(path)
	if err != nil {
		return err
	}
	defer srv.Stop()
	proxy, err := redistest.NewProxy(srv.Addr)
	if err != nil {
		return err
	}
	defer proxy.Close()
	b := &bench{cfg: c, out: out, srv: srv, proxy: proxy, applied: make(chan applied, 4096)}
	defer b.stopAll()
	fmt.Fprintf(out, "redis-server %s (pid %d); %d instances\n", srv.Addr, srv.PID(), c.instances)
	for _, step := range []func() error{b.start, b.latency, b.partitions, b.hangs, b.flushAll} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// check reports the first flag whose value the measurements cannot use.
func (c config) check() error {
	for _, f := range []struct {
		flag string
		v    int
	}{{"-instances", c.instances}, {"-publishes", c.publishes}, {"-rounds", c.rounds}} {
		if f.v < 1 {
			return fmt.Errorf("%s %d must be at least 1", f.flag, f.v)
		}
	}
	if c.partition <= 0 {
		return fmt.Errorf("-partition %v must be positive", c.partition)
	}
	if c.hang < 0 {
		return fmt.Errorf("-hang %v must be positive, or 0 to skip it", c.hang)
	}
	return nil
}

type applied struct {
	id   int
	head fleet.Head
	at   time.Time
}

type instance struct {
	reg    *rollout.Registry
	gate   *rollout.Gate
	s      *fleet.Syncer
	client *redis.Client
	stop   func()
}

type bench struct {
	cfg     config
	out     io.Writer
	srv     *redistest.Server
	proxy   *redistest.Proxy
	ins     []*instance
	pub     *fleet.Publisher
	applied chan applied
	admin   *redis.Client
}

func (b *bench) stopAll() {
	for _, in := range b.ins {
		in.stop()
	}
	if b.admin != nil {
		_ = b.admin.Close()
	}
}

func client(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, PoolSize: 4})
}

// start starts the instances; the last one connects through the proxy.
func (b *bench) start() error {
	for i := range b.cfg.instances {
		addr := b.srv.Addr
		if i == b.cfg.instances-1 {
			addr = b.proxy.Addr
		}
		reg, _ := rollout.NewRegistry()
		g, _ := rollout.New("checkout-v2", rollout.WithPercent(50))
		_ = reg.Register(g)
		c := client(addr)
		store, err := redisfleet.New(c, redisfleet.WithHealthCheck(time.Second))
		if err != nil {
			return err
		}
		id := i
		s, err := fleet.New(store, reg, fleet.WithInstanceID("i"+strconv.Itoa(i)),
			fleet.WithHeartbeatInterval(time.Second), fleet.WithStaleAfter(2*time.Second), fleet.WithTimeout(500*time.Millisecond),
			fleet.WithOnApply(func(in fleet.Instance) {
				select {
				case b.applied <- applied{id: id, head: in.Applied, at: time.Now()}:
				default:
				}
			}))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = s.Run(ctx); close(done) }()
		in := &instance{reg: reg, gate: g, s: s, client: c, stop: func() { cancel(); <-done; _ = c.Close() }}
		b.ins = append(b.ins, in)
		select {
		case <-s.Ready():
		case <-time.After(5 * time.Second):
			return errors.New("instance not ready")
		}
	}
	b.admin = client(b.srv.Addr)
	store, _ := redisfleet.New(b.admin)
	pub, err := fleet.NewPublisher(store, fleet.WithActor("fleetbench"))
	b.pub = pub
	b.drain()
	return err
}

func (b *bench) drain() {
	for {
		select {
		case <-b.applied:
		default:
			return
		}
	}
}

// waitAll waits until every instance in ids reported applying h, and
// returns when each did.
func (b *bench) waitAll(h fleet.Head, ids []int, bound time.Duration) (map[int]time.Time, error) {
	got := map[int]time.Time{}
	deadline := time.After(bound)
	for len(got) < len(ids) {
		select {
		case a := <-b.applied:
			if a.head.Epoch == h.Epoch && a.head.Version >= h.Version && slices.Contains(ids, a.id) {
				if _, ok := got[a.id]; !ok {
					got[a.id] = a.at
				}
			}
		case <-deadline:
			return got, fmt.Errorf("%d of %d instances applied version %d within %v", len(got), len(ids), h.Version, bound)
		}
	}
	return got, nil
}

func (b *bench) all() []int {
	ids := make([]int, len(b.ins))
	for i := range ids {
		ids[i] = i
	}
	return ids
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// toggle publishes the i-th change of an alternation: a kill of the gate
// for even i, a resume for odd i.
func (b *bench) toggle(ctx context.Context, i int, reason string) (fleet.Published, error) {
	if i%2 == 0 {
		return b.pub.Kill(ctx, "checkout-v2", reason)
	}
	return b.pub.Resume(ctx, "checkout-v2")
}

func (b *bench) latency() error {
	ctx := context.Background()
	var lat []time.Duration
	perInstance := make([]int, len(b.ins))
	for i := range b.cfg.publishes {
		t0 := time.Now()
		p, err := b.toggle(ctx, i, "bench")
		if err != nil {
			return err
		}
		got, err := b.waitAll(p.Head, b.all(), 5*time.Second)
		if err != nil {
			return err
		}
		for id, at := range got {
			lat = append(lat, at.Sub(t0))
			perInstance[id]++
		}
	}
	for id, n := range perInstance {
		if n != b.cfg.publishes {
			return fmt.Errorf("instance %d applied %d of %d versions", id, n, b.cfg.publishes)
		}
	}
	fmt.Fprintf(b.out, "publish to applied, %d alternating kill/resume x %d instances: p50 %v  p99 %v  max %v (every instance applied every version)\n",
		b.cfg.publishes, len(b.ins), pct(lat, 0.5).Round(time.Microsecond), pct(lat, 0.99).Round(time.Microsecond), pct(lat, 1).Round(time.Microsecond))
	return nil
}

func (b *bench) partitions() error {
	ctx := context.Background()
	last := len(b.ins) - 1
	var heal []time.Duration
	for r := range b.cfg.rounds {
		b.proxy.Cut()
		cutAt := time.Now()
		p, err := b.toggle(ctx, r, "during the partition")
		if err != nil {
			return err
		}
		others := b.all()[:last]
		if _, err := b.waitAll(p.Head, others, 5*time.Second); err != nil {
			return err
		}
		time.Sleep(time.Until(cutAt.Add(b.cfg.partition)))
		if b.ins[last].s.Status().Applied == p.Head {
			return errors.New("the partitioned instance applied the change through a cut connection")
		}
		b.drain()
		b.proxy.Heal()
		healAt := time.Now()
		got, err := b.waitAll(p.Head, []int{last}, 5*time.Second)
		if err != nil {
			return err
		}
		heal = append(heal, got[last].Sub(healAt))
	}
	fmt.Fprintf(b.out, "partition %v, change published during it: heal to applied %v (rounds: %v)\n",
		b.cfg.partition, pct(heal, 1).Round(time.Millisecond), roundAll(heal))
	return nil
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func (b *bench) hangs() error {
	if b.cfg.hang <= 0 {
		return nil
	}
	ctx := context.Background()
	keys := make([]string, 64)
	want := make([][]bool, len(b.ins))
	for i, in := range b.ins {
		want[i] = make([]bool, len(keys))
		for k := range keys {
			keys[k] = "user-" + strconv.Itoa(k)
			want[i][k] = in.gate.Enabled(keys[k])
		}
	}
	var calls, changes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, in := range b.ins {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if n%64 == 0 {
					runtime.Gosched() // a service also waits on I/O; let the syncers (and the in-process proxy) run
				}
				k := n % len(keys)
				if in.gate.Enabled(keys[k]) != want[i][k] {
					changes.Add(1)
				}
				calls.Add(1)
			}
		})
	}
	if err := b.srv.Pause(); err != nil {
		return err
	}
	pausedAt := time.Now()
	var staleAll time.Duration
	for time.Since(pausedAt) < b.cfg.hang {
		if staleAll == 0 && b.allStale(true) {
			staleAll = time.Since(pausedAt)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.srv.Continue(); err != nil {
		return err
	}
	contAt := time.Now()
	for !b.allStale(false) {
		if time.Since(contAt) > 30*time.Second {
			for _, in := range b.ins {
				st := in.s.Status()
				fmt.Fprintf(b.out, "  %s stale %v error %q last contact %v\n", st.ID, st.Stale, st.StoreError, st.LastContact)
			}
			return errors.New("no resync 30s after SIGCONT")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resync := time.Since(contAt)
	close(stop)
	wg.Wait()
	b.drain()
	t0 := time.Now()
	p, err := b.pub.Kill(ctx, "checkout-v2", "after the hang")
	if err != nil {
		return err
	}
	got, err := b.waitAll(p.Head, b.all(), 5*time.Second)
	if err != nil {
		return err
	}
	stale := "not all stale within the hang (bound 2s)"
	if staleAll > 0 {
		stale = "all stale after " + staleAll.Round(time.Millisecond).String()
	}
	fmt.Fprintf(b.out, "hang (SIGSTOP) %v: %d Enabled calls on %d instances, %d changed answers; %s; resynced %v after SIGCONT; next kill applied on all in %v\n",
		b.cfg.hang, calls.Load(), len(b.ins), changes.Load(), stale, resync.Round(time.Millisecond), latest(got).Sub(t0).Round(time.Microsecond))
	return nil
}

func latest(m map[int]time.Time) time.Time {
	var t time.Time
	for _, at := range m {
		if at.After(t) {
			t = at
		}
	}
	return t
}

// allStale reports whether every instance's Stale is want (and, for
// false, its last store call succeeded).
func (b *bench) allStale(want bool) bool {
	for _, in := range b.ins {
		st := in.s.Status()
		if st.Stale != want || (!want && st.StoreError != "") {
			return false
		}
	}
	return true
}

func (b *bench) flushAll() error {
	ctx := context.Background()
	before := b.ins[0].s.Status()
	b.drain()
	if err := b.admin.FlushAll(ctx).Err(); err != nil {
		return err
	}
	t0 := time.Now()
	got, err := b.waitAll(fleet.Head{}, b.all(), 10*time.Second)
	if err != nil {
		return err
	}
	seen := latest(got).Sub(t0)
	kept := 0
	for _, in := range b.ins {
		if in.s.Status().Config.Hash == before.Config.Hash && in.gate.Status().Killed == before.Gates[0].Killed {
			kept++
		}
	}
	t1 := time.Now()
	p, err := b.pub.Resume(ctx, "checkout-v2")
	if err != nil {
		return err
	}
	got, err = b.waitAll(p.Head, b.all(), 5*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "FLUSHALL at version %d: empty store seen by all in %v, %d of %d kept their state; next publish (epoch %s, version %d) applied on %d of %d in %v\n",
		before.Applied.Version, seen.Round(time.Millisecond), kept, len(b.ins), p.Epoch[:8], p.Version, len(got), len(b.ins), latest(got).Sub(t1).Round(time.Microsecond))
	return nil
}

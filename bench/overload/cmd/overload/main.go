// Command overload measures load shedding under overload with a real
// open-loop load generator (vegeta, constant rate, 2 s client timeout)
// against server processes on 127.0.0.1:
//
//   - none: no protection;
//   - static: edge.Shed(edge.WithMaxInFlight(k)), k tuned to the handler;
//   - adaptive: edge.Shed(edge.WithAdaptiveLimit()), no number given;
//   - gozero: go-zero's adaptive shedder with its defaults (CPU threshold
//     90%), in a binary of its own;
//   - gozero-cpu0: the same with WithCpuThreshold(0), so that it may shed at
//     any CPU usage.
//
// For each handler (slot: 8 slots × 5 ms of sleep; cpu: 5 ms of computation
// per request) it calibrates the capacity (closed loop, no protection) and
// the unloaded latency (open loop at 0.2× capacity), then offers 0.5×, 1×,
// 2× (three times) and 4× the capacity to each contender, a fresh process
// per run, and reports goodput (200s within 1 s) as a fraction of the
// capacity, p50 and p99 of the admitted requests, p99 of the refusals and
// whether they carry Retry-After. Then, at 2× the capacity, it halves the
// handler's capacity mid-run and restores it, and reports how long p99
// takes to come back under 3× the new unloaded p99.
//
//	go run ./bench/overload/cmd/overload              # about 5 minutes
//	go run ./bench/overload/cmd/overload -smoke       # seconds
//
// It builds the server binaries with the go command (run it inside the
// repository), unless -bin names a directory that holds them.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/blastradius/blastradius/bench/overload/internal/server"
)

func main() {
	if err := pinSelf(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "overload:", err)
		os.Exit(1)
	}
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "overload:", err)
		os.Exit(1)
	}
}

// Targets of the adaptive limit.
const (
	goodputTarget  = 0.95 // of capacity, at 2× and 4×
	p99Factor      = 3    // admitted p99 at most this times the unloaded p99
	refusalP99Max  = 2 * time.Millisecond
	recoveryTarget = 2 * time.Second // after the capacity halves
	good           = time.Second     // a 200 within this is goodput
	clientTimeout  = 2 * time.Second
)

type config struct {
	bin        string
	handlers   []string
	contenders []string
	halvers    []string
	loads      []float64
	warmup     time.Duration
	duration   time.Duration
	phase      time.Duration
	calibrate  time.Duration
	pin        bool
	slots      int
	slotWork   time.Duration
	cpuWork    time.Duration
	logs       string
}

func parse(args []string) (config, error) {
	fs := flag.NewFlagSet("overload", flag.ContinueOnError)
	var c config
	var handlers, contenders, halvers, loads string
	smoke := fs.Bool("smoke", false, "a run of seconds: slot handler (4 slots × 10 ms), 2× only, short phases")
	fs.StringVar(&c.bin, "bin", "", "directory holding the edgeserver and gozeroserver binaries (default: build them)")
	fs.StringVar(&handlers, "handlers", "slot,cpu", "handlers to measure")
	fs.StringVar(&contenders, "contenders", "none,static,adaptive,gozero,gozero-cpu0", "contenders of the load table")
	fs.StringVar(&halvers, "halving", "static,adaptive,gozero-cpu0", "contenders of the capacity-halving run (empty: skip it)")
	fs.StringVar(&loads, "loads", "0.5,1,2,2,2,4", "offered loads, as multiples of the capacity")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "load before measuring, each run")
	fs.DurationVar(&c.duration, "duration", 2*time.Second, "measured load, each run")
	fs.DurationVar(&c.phase, "phase", 3*time.Second, "halving run: full, halved and restored capacity, each")
	fs.DurationVar(&c.calibrate, "calibrate", 2*time.Second, "each calibration measurement")
	fs.IntVar(&c.slots, "slots", 8, "slot handler: requests at once")
	fs.DurationVar(&c.slotWork, "slot-work", 5*time.Millisecond, "slot handler: sleep per request")
	fs.DurationVar(&c.cpuWork, "cpu-work", 5*time.Millisecond, "cpu handler: computation per request")
	fs.StringVar(&c.logs, "logs", "", "directory for the servers' stderr (default: discard)")
	fs.BoolVar(&c.pin, "pin", true, "with taskset and 2+ CPUs: the load generator on CPU 0, the servers on the others")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if *smoke {
		handlers, contenders, halvers, loads = "slot", "static,adaptive,gozero-cpu0", "adaptive", "2"
		c.slots, c.slotWork = 4, 10*time.Millisecond
		c.warmup, c.duration, c.phase, c.calibrate = 500*time.Millisecond, time.Second, 1500*time.Millisecond, time.Second
		c.pin = false
	}

	split := func(s string) []string {
		var out []string
		for f := range strings.SplitSeq(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	if c.warmup < 0 {
		return c, fmt.Errorf("-warmup %v must be >= 0", c.warmup)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"-duration", c.duration}, {"-phase", c.phase}, {"-calibrate", c.calibrate}, {"-slot-work", c.slotWork}, {"-cpu-work", c.cpuWork}} {
		if d.v <= 0 {
			return c, fmt.Errorf("%s %v must be > 0", d.flag, d.v)
		}
	}
	if c.slots <= 0 {
		return c, fmt.Errorf("-slots %d must be > 0", c.slots)
	}
	c.handlers, c.contenders, c.halvers = split(handlers), split(contenders), split(halvers)
	for _, f := range split(loads) {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil || !(x > 0) || math.IsInf(x, 0) {
			return c, fmt.Errorf("-loads: %q is not a positive number", f)
		}
		c.loads = append(c.loads, x)
	}
	for flag, names := range map[string][]string{"-contenders": c.contenders, "-halving": c.halvers} {
		for _, name := range names {
			if _, ok := contenderArgs[name]; !ok {
				return c, fmt.Errorf("%s: unknown contender %q", flag, name)
			}
		}
	}
	for _, h := range c.handlers {
		if h != "slot" && h != "cpu" {
			return c, fmt.Errorf("-handlers: unknown handler %q (slot or cpu)", h)
		}
	}
	return c, nil
}

// contenderArgs gives each contender's binary and flags; static's cap is
// added per handler.
var contenderArgs = map[string][]string{
	"none":        {"edgeserver", "-contender", "none"},
	"static":      {"edgeserver", "-contender", "static"},
	"adaptive":    {"edgeserver", "-contender", "adaptive"},
	"gozero":      {"gozeroserver", "-cpu-threshold", "900"},
	"gozero-cpu0": {"gozeroserver", "-cpu-threshold", "0"},
}

func run(ctx context.Context, args []string, out io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	if c.bin == "" {
		dir, err := os.MkdirTemp("", "overload")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := build(ctx, dir); err != nil {
			return err
		}
		c.bin = dir
	}
	// Every server computes the same iterations, measured once here.
	b := &bench{cfg: c, out: out, cpus: runtime.NumCPU(), iters: server.IterationsFor(c.cpuWork)}
	if n := pinned(); c.pin && n > 1 {
		b.cpus, b.pinned = n, true
	}
	where := fmt.Sprintf("load generator and servers share %d CPUs", b.cpus)
	if b.pinned {
		where = fmt.Sprintf("load generator on CPU 0, servers on CPUs 1-%d (GOMAXPROCS %d)", b.cpus-1, b.cpus)
	}
	fmt.Fprintf(out, "# Overload: %s, %s; vegeta open loop, %v client timeout; goodput = 200s within %v\n",
		runtime.GOOS+"/"+runtime.GOARCH, where, clientTimeout, good)
	for _, h := range c.handlers {
		if err := b.handler(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// pinnedEnv marks the process that pinSelf pinned.
const pinnedEnv = "OVERLOAD_PINNED"

// pinSelf runs the command again under taskset on CPU 0 (the servers get the
// other CPUs), so that the load generator and the server under test do not
// take CPU time from each other; not with -pin=false or -smoke, on one CPU,
// without taskset, or when already pinned (pinnedEnv is set).
func pinSelf(args []string) error {
	c, err := parse(args)
	if err != nil || !c.pin || os.Getenv(pinnedEnv) != "" || runtime.NumCPU() < 2 {
		return nil // a parse error is run's to report
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := append(os.Environ(), fmt.Sprintf("%s=%d", pinnedEnv, runtime.NumCPU()))
	return syscall.Exec(taskset, append([]string{"taskset", "-c", "0", self}, args...), env)
}

// pinned returns the machine's CPUs if pinSelf pinned this process to CPU
// 0 (the servers go on the others), or 0.
func pinned() int {
	n, _ := strconv.Atoi(os.Getenv(pinnedEnv))
	return n
}

// build builds the server binaries into dir.
func build(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir,
		"github.com/blastradius/blastradius/bench/overload/cmd/edgeserver",
		"github.com/blastradius/blastradius/bench/overload/cmd/gozeroserver")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the servers: %w", err)
	}
	return nil
}

type bench struct {
	cfg    config
	out    io.Writer
	iters  int64 // cpu handler: iterations of server.Spin per request
	cpus   int   // the machine's
	pinned bool  // the driver on CPU 0, the servers on the others
}

// serverCPUs returns the CPUs the servers run on.
func (b *bench) serverCPUs() int {
	if b.pinned {
		return b.cpus - 1
	}
	return b.cpus
}

// calibration is what the handler does with no protection.
type calibration struct {
	capacity float64 // requests/s, closed loop
	p50, p99 time.Duration
}

func (b *bench) handlerArgs(h string) []string {
	switch h {
	case "cpu":
		return []string{"-handler", "cpu", "-iters", strconv.FormatInt(b.iters, 10)}
	default:
		return []string{"-handler", "slot", "-slots", strconv.Itoa(b.cfg.slots), "-work", b.cfg.slotWork.String()}
	}
}

func (b *bench) describe(h string) string {
	if h == "cpu" {
		return fmt.Sprintf("cpu handler (%v of computation per request, %d CPUs)", b.cfg.cpuWork, b.serverCPUs())
	}
	return fmt.Sprintf("slot handler (%d slots × %v)", b.cfg.slots, b.cfg.slotWork)
}

// staticCap is the tuned static cap: the slots, or two per CPU.
func (b *bench) staticCap(h string) int {
	if h == "cpu" {
		return 2 * b.serverCPUs()
	}
	return b.cfg.slots
}

func (b *bench) args(contender, h string) (string, []string) {
	a := contenderArgs[contender]
	args := slices.Concat(a[1:], b.handlerArgs(h))
	if contender == "static" {
		args = append(args, "-cap", strconv.Itoa(b.staticCap(h)))
	}
	return filepath.Join(b.cfg.bin, a[0]), args
}

func (b *bench) start(ctx context.Context, contender, h, tag string) (*proc, error) {
	bin, args := b.args(contender, h)
	logw := io.Discard
	if b.cfg.logs != "" {
		f, err := os.Create(filepath.Join(b.cfg.logs, fmt.Sprintf("%s-%s-%s.log", h, contender, tag)))
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child has its own descriptor
		logw = f
	}
	var env []string
	if b.pinned {
		args = append([]string{"-c", fmt.Sprintf("1-%d", b.cpus-1), bin}, args...)
		bin = "taskset"
		// As many Ps as the machine has CPUs, as in a container with a CPU
		// quota: with one P, a computing handler keeps the network poller
		// waiting for up to 10 ms (until sysmon polls), refusals included.
		env = []string{fmt.Sprintf("GOMAXPROCS=%d", b.cpus)}
	}
	return start(ctx, bin, args, env, logw)
}

func (b *bench) handler(ctx context.Context, h string) error {
	full, err := b.calibrate(ctx, h, 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "\n## %s: capacity %.0f requests/s; unloaded p50 %s, p99 %s\n\n",
		b.describe(h), full.capacity, ms(full.p50), ms(full.p99))
	if len(b.cfg.contenders) > 0 && len(b.cfg.loads) > 0 {
		fmt.Fprintf(b.out, "static cap: %d\n\n", b.staticCap(h))
		fmt.Fprintln(b.out, "| offered | contender | goodput | admitted p50 | admitted p99 | refused | refusal p99 | Retry-After | failed |")
		fmt.Fprintln(b.out, "|---|---|---|---|---|---|---|---|---|")
	}
	var missed []string
	for _, load := range b.cfg.loads {
		for _, contender := range b.cfg.contenders {
			s, err := b.loadRun(ctx, contender, h, load*full.capacity)
			if err != nil {
				return err
			}
			fmt.Fprintf(b.out, "| %.1f× | %s | %s |\n", load, contender, s.row(full.capacity))
			if contender == "adaptive" {
				missed = append(missed, s.misses(load, full)...)
			}
		}
	}
	if len(b.cfg.halvers) == 0 {
		b.verdict(h, missed)
		return nil
	}
	half, err := b.calibrate(ctx, h, 0.5)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "\n### %s, capacity halved after %v and restored after %v, offered 2× the full capacity\n\n",
		b.describe(h), b.cfg.phase, 2*b.cfg.phase)
	fmt.Fprintf(b.out, "halved: capacity %.0f requests/s, unloaded p50 %s, p99 %s; the p99 target is %s\n\n",
		half.capacity, ms(half.p50), ms(half.p99), ms(p99Factor*half.p99))
	fmt.Fprintln(b.out, "| contender | goodput full | goodput halved | goodput restored | p99 full | p99 halved | p99 restored | p99 back under target after |")
	fmt.Fprintln(b.out, "|---|---|---|---|---|---|---|---|")
	var timelines []string
	for _, contender := range b.cfg.halvers {
		r, err := b.halving(ctx, contender, h, full, half)
		if err != nil {
			return err
		}
		fmt.Fprintf(b.out, "| %s | %s |\n", contender, r.row())
		if contender == "adaptive" {
			if r.recovery < 0 || r.recovery > recoveryTarget {
				missed = append(missed, fmt.Sprintf("after halving, p99 back under %s after %s (target %v)", ms(p99Factor*half.p99), r.recoveryString(), recoveryTarget))
			}
		}
		if r.limits != "" {
			timelines = append(timelines, fmt.Sprintf("%s limit every 250 ms: %s", contender, r.limits))
		}
	}
	fmt.Fprintln(b.out)
	for _, t := range timelines {
		fmt.Fprintln(b.out, t)
	}
	b.verdict(h, missed)
	return nil
}

func (b *bench) verdict(h string, missed []string) {
	if !slices.Contains(b.cfg.contenders, "adaptive") {
		return
	}
	if len(missed) == 0 {
		fmt.Fprintf(b.out, "\nadaptive, %s handler: every target met\n", h)
		return
	}
	fmt.Fprintf(b.out, "\nadaptive, %s handler: targets missed:\n", h)
	for _, m := range missed {
		fmt.Fprintf(b.out, "  - %s\n", m)
	}
}

// calibrate measures the handler with no protection at factor times its
// configured capacity: the capacity with a closed loop of many workers,
// then the latency at 0.2× that, open loop.
func (b *bench) calibrate(ctx context.Context, h string, factor float64) (calibration, error) {
	p, err := b.start(ctx, "none", h, fmt.Sprintf("calibrate-%g", factor))
	if err != nil {
		return calibration{}, err
	}
	defer p.stop()
	if factor != 1 {
		if err := p.control(factor); err != nil {
			return calibration{}, err
		}
	}
	workers := uint64(4 * b.cfg.slots)
	if h == "cpu" {
		workers = uint64(8 * b.serverCPUs())
	}
	warm := b.cfg.calibrate / 4
	rs := attack(p.addr, 0, workers, warm+b.cfg.calibrate, nil)
	var ok int
	for _, r := range rs {
		if r.at >= warm && r.code == 200 {
			ok++
		}
	}
	c := calibration{capacity: float64(ok) / b.cfg.calibrate.Seconds()}
	if c.capacity < 1 {
		return c, fmt.Errorf("%s handler: calibration served nothing", h)
	}
	s := summarize(attack(p.addr, 0.2*c.capacity, 0, warm+b.cfg.calibrate, nil), warm, warm+b.cfg.calibrate)
	c.p50, c.p99 = s.p50, s.p99
	return c, nil
}

// loadRun offers rate requests/s to a fresh process of contender for the
// warm-up and the measured duration, and summarises the measured part.
func (b *bench) loadRun(ctx context.Context, contender, h string, rate float64) (stats, error) {
	p, err := b.start(ctx, contender, h, fmt.Sprintf("%.0f", rate))
	if err != nil {
		return stats{}, err
	}
	defer p.stop()
	rs := attack(p.addr, rate, 0, b.cfg.warmup+b.cfg.duration, nil)
	return summarize(rs, b.cfg.warmup, b.cfg.warmup+b.cfg.duration), nil
}

// halvingResult is a capacity-halving run.
type halvingResult struct {
	phases   [3]stats
	caps     [3]float64
	recovery time.Duration // -1: never
	limits   string
}

func (r halvingResult) recoveryString() string {
	if r.recovery < 0 {
		return "never"
	}
	return r.recovery.String()
}

func (r halvingResult) row() string {
	var cells []string
	for i, s := range r.phases {
		cells = append(cells, pct(s.goodput/r.caps[i]))
	}
	for _, s := range r.phases {
		cells = append(cells, ms(s.p99))
	}
	return strings.Join(append(cells, r.recoveryString()), " | ")
}

// halving offers 2× the full capacity for three phases: full capacity,
// halved, restored. Phase figures leave out the first second of each
// phase; the recovery is the time from the halving until p99, in 250 ms
// buckets, stays under the target for the rest of the halved phase.
func (b *bench) halving(ctx context.Context, contender, h string, full, half calibration) (halvingResult, error) {
	p, err := b.start(ctx, contender, h, "halving")
	if err != nil {
		return halvingResult{}, err
	}
	defer p.stop()
	ph := b.cfg.phase
	var (
		mu     sync.Mutex
		limits []string
		errc   = make(chan error, 1)
	)
	const bucket = 250 * time.Millisecond
	onStart := func(start time.Time) {
		go func() {
			var cerr error
			for t := bucket; t < 3*ph; t += bucket {
				time.Sleep(time.Until(start.Add(t)))
				switch t {
				case ph:
					cerr = errors.Join(cerr, p.control(0.5))
				case 2 * ph:
					cerr = errors.Join(cerr, p.control(1))
				}
				if g := p.stats(); g != "" {
					mu.Lock()
					limits = append(limits, field(g, "limit"))
					mu.Unlock()
				}
			}
			errc <- cerr
		}()
	}
	rs := attack(p.addr, 2*full.capacity, 0, 3*ph, onStart)
	if err := <-errc; err != nil {
		return halvingResult{}, err
	}
	r := halvingResult{caps: [3]float64{full.capacity, half.capacity, full.capacity}, recovery: -1}
	skip := min(time.Second, ph/3)
	for i := range r.phases {
		from := time.Duration(i) * ph
		r.phases[i] = summarize(rs, from+skip, from+ph)
	}
	target := p99Factor * half.p99
	for t := ph; t < 2*ph; t += bucket {
		ok := true
		for u := t; u < 2*ph; u += bucket {
			if s := summarize(rs, u, u+bucket); s.ok == 0 || s.p99 > target {
				ok = false
				break
			}
		}
		if ok {
			r.recovery = t - ph
			break
		}
	}
	mu.Lock()
	if slices.ContainsFunc(limits, func(s string) bool { return s != "" }) {
		r.limits = strings.Join(limits, " ")
	}
	mu.Unlock()
	return r, nil
}

// field returns the value of key in "k=v k=v" text.
func field(s, key string) string {
	for f := range strings.FieldsSeq(s) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// result is one request: when it was sent (since the attack began), its
// latency, status and whether a refusal carried Retry-After.
type result struct {
	at, latency time.Duration
	code        uint16
	retryAfter  bool
	failed      bool // no HTTP answer: a timeout or a connection error
}

// attack sends requests to addr at rate per second (0: as fast as workers
// allow, a closed loop) for d, with vegeta, and returns every result.
// onStart, if not nil, is called with the attack's start time.
func attack(addr string, rate float64, workers uint64, d time.Duration, onStart func(time.Time)) []result {
	opts := []func(*vegeta.Attacker){
		vegeta.Timeout(clientTimeout), vegeta.KeepAlive(true), vegeta.MaxBody(0),
		vegeta.Connections(20000), vegeta.HTTP2(false),
	}
	if workers > 0 {
		opts = append(opts, vegeta.Workers(workers), vegeta.MaxWorkers(workers))
	}
	atk := vegeta.NewAttacker(opts...)
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: "http://" + addr + "/"})
	pacer := vegeta.ConstantPacer{Freq: int(math.Round(rate)), Per: time.Second}
	start := time.Now()
	if onStart != nil {
		onStart(start)
	}
	var out []result
	for r := range atk.Attack(tr, pacer, d, "") {
		out = append(out, result{
			at:         r.Timestamp.Sub(start),
			latency:    r.Latency,
			code:       r.Code,
			retryAfter: r.Headers.Get("Retry-After") != "",
			failed:     r.Code == 0,
		})
	}
	return out
}

// stats summarises the results sent in a time range.
type stats struct {
	seconds    float64
	sent, ok   int
	goodput    float64 // 200s within `good`, per second
	p50, p99   time.Duration
	refused    int // 503 or 429
	refusalP99 time.Duration
	retryAfter int // refusals with Retry-After
	failed     int // timeouts, connection errors, other statuses
}

func summarize(rs []result, from, to time.Duration) stats {
	s := stats{seconds: (to - from).Seconds()}
	var okLat, refLat []time.Duration
	var goodN int
	for _, r := range rs {
		if r.at < from || r.at >= to {
			continue
		}
		s.sent++
		switch {
		case r.code == 200:
			s.ok++
			okLat = append(okLat, r.latency)
			if r.latency <= good {
				goodN++
			}
		case r.code == 503 || r.code == 429:
			s.refused++
			refLat = append(refLat, r.latency)
			if r.retryAfter {
				s.retryAfter++
			}
		default:
			s.failed++
		}
	}
	s.goodput = float64(goodN) / s.seconds
	s.p50, s.p99 = quantile(okLat, 0.50), quantile(okLat, 0.99)
	s.refusalP99 = quantile(refLat, 0.99)
	return s
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

func (s stats) row(capacity float64) string {
	refused, refusalP99, retry := "0", "–", "–"
	if s.refused > 0 {
		refused = pct(float64(s.refused) / float64(s.sent))
		refusalP99 = ms(s.refusalP99)
		retry = pct(float64(s.retryAfter) / float64(s.refused))
	}
	p50, p99 := "–", "–"
	if s.ok > 0 {
		p50, p99 = ms(s.p50), ms(s.p99)
	}
	failed := "0"
	if s.failed > 0 {
		failed = pct(float64(s.failed) / float64(s.sent))
	}
	return strings.Join([]string{pct(s.goodput / capacity), p50, p99, refused, refusalP99, retry, failed}, " | ")
}

// misses lists the targets the adaptive limit missed in this run.
func (s stats) misses(load float64, c calibration) []string {
	var m []string
	if load >= 2 && s.goodput < goodputTarget*c.capacity {
		m = append(m, fmt.Sprintf("%.1f×: goodput %s of capacity (target %s)", load, pct(s.goodput/c.capacity), pct(goodputTarget)))
	}
	if load >= 1 && s.ok > 0 && s.p99 > p99Factor*c.p99 {
		m = append(m, fmt.Sprintf("%.1f×: admitted p99 %s > %d× unloaded p99 = %s", load, ms(s.p99), p99Factor, ms(p99Factor*c.p99)))
	}
	if s.refused > 0 && s.refusalP99 > refusalP99Max {
		m = append(m, fmt.Sprintf("%.1f×: refusal p99 %s (target %s)", load, ms(s.refusalP99), ms(refusalP99Max)))
	}
	return m
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// proc is a running server.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	http  *http.Client
}

// start starts bin and waits for its "listening ADDR" line.
func start(ctx context.Context, bin string, args, env []string, stderr io.Writer) (*proc, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin, http: &http.Client{Timeout: 5 * time.Second}}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		addr, ok := strings.CutPrefix(strings.TrimSpace(l), "listening ")
		if !ok {
			p.stop()
			return nil, fmt.Errorf("%s: no address, got %q", filepath.Base(bin), l)
		}
		p.addr = addr
		return p, nil
	case <-time.After(10 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s: no address within 10 s", filepath.Base(bin))
	}
}

// stop closes the server's stdin, which ends it, or kills it after 3 s.
func (p *proc) stop() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// control sets the server's capacity to f times the configured one.
func (p *proc) control(f float64) error {
	resp, err := p.http.Get(fmt.Sprintf("http://%s/control?factor=%g", p.addr, f))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("control: %s", resp.Status)
	}
	return nil
}

// stats returns the server's gauges, or "".
func (p *proc) stats() string {
	resp, err := p.http.Get("http://" + p.addr + "/stats")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

package edge

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// AdaptiveOption configures the adaptive limit of WithAdaptiveLimit. A nil
// AdaptiveOption is skipped.
type AdaptiveOption interface {
	applyAdaptive(*adaptiveConfig)
}

type adaptiveConfig struct {
	overLimit
	lo, hi    int
	tolerance float64
}

type adaptiveOption func(*adaptiveConfig)

func (o adaptiveOption) applyAdaptive(c *adaptiveConfig) { o(c) }

// Defaults of WithAdaptiveLimit.
const (
	defaultLimitLo   = 1
	defaultLimitHi   = 1000
	defaultTolerance = 1.5
	maxLimitHi       = 1 << 16
)

// The control loop's constants.
const (
	windowMin      = 100 * time.Millisecond // a window lasts at least this long
	windowSamples  = 10                     // and holds at least this many samples
	probeSamples   = 10                     // samples of a no-load probe
	probeEvery     = 10                     // windows between two probes
	smoothing      = 0.5                    // weight of a window's estimate in the limit
	headroom       = 0.25                   // requests the limit allows beyond the tolerance, when reached
	minGradient    = 0.5                    // a window at most halves the limit
	maxGradient    = 2                      // and at most doubles it
	logChangeRatio = 1.5                    // a change this large (either way) since the last record is logged
)

// WithAdaptiveLimit caps the requests Shed lets run at once with a limit
// that Shed finds by itself, from the latency it measures, in the family of
// TCP congestion control and Netflix's concurrency-limits. No capacity
// number is needed.
//
// Over a window of at least 100 ms (and twice the limit in requests), Shed
// averages the latency of the requests it admitted and compares it with the
// no-load latency: when requests take longer than WithLatencyTolerance
// times the no-load latency (default 1.5), the limit shrinks in proportion
// (at most by half per window); when they take less and the limit was
// reached, it grows (at most double per window), plus a quarter request, so
// that a handler that runs one request at a time keeps one waiting. About
// every tenth window, Shed re-measures the no-load latency over 10 requests
// with the limit cut to 1/(tolerance+1) of its value, so the reference
// follows a dependency that got slower or faster; it does so only while the
// limit is being reached, so a server under its capacity sheds nothing. The
// limit starts at its lower bound, doubles every window while latency stays
// low, and stays within WithLimitBounds (default 1 to 1000). Latency is
// measured on the monotonic clock (WithClock is the rate limiter's).
//
// A request over the limit waits in the queue (WithQueue) or gets a 503
// with Retry-After (WithRetryAfter), as with WithMaxInFlight. Only the
// latency of admitted requests counts, from admission to the handler's
// return: put one Shed in front of requests of a similar cost, not in front
// of a mix of 1 ms and 1 s routes.
//
// WithAdaptiveLimit and WithMaxInFlight are exclusive: Shed panics if given
// both. Given twice, the last WithAdaptiveLimit wins.
func WithAdaptiveLimit(opts ...AdaptiveOption) ShedOption {
	return shedOption(func(c *shedConfig) {
		if c.maxInFlight > 0 {
			invalid("WithAdaptiveLimit after WithMaxInFlight(%d): use one of them", c.maxInFlight)
			return
		}
		a := &adaptiveConfig{overLimit: defaultOverLimit(), lo: defaultLimitLo, hi: defaultLimitHi, tolerance: defaultTolerance}
		for _, o := range opts {
			if o != nil {
				o.applyAdaptive(a)
			}
		}
		c.adaptive, c.over = a, a.overLimit
	})
}

// WithLimitBounds keeps the adaptive limit within [lo, hi]. 1 <= lo <= hi
// <= 65536. Default 1 and 1000.
func WithLimitBounds(lo, hi int) AdaptiveOption {
	return adaptiveOption(func(c *adaptiveConfig) {
		if lo < 1 || hi < lo || hi > maxLimitHi {
			invalid("WithLimitBounds(%d, %d): want 1 <= lo <= hi <= %d", lo, hi, maxLimitHi)
			return
		}
		c.lo, c.hi = lo, hi
	})
}

// WithLatencyTolerance sets how much slower than with no load the admitted
// requests may run, on average, before the adaptive limit shrinks: the limit
// settles where requests take f times the no-load latency. A larger f keeps
// more requests waiting inside the handler (more throughput when service
// times vary, more latency); a smaller f sheds sooner. f must be > 1 and
// finite. Default 1.5.
func WithLatencyTolerance(f float64) AdaptiveOption {
	return adaptiveOption(func(c *adaptiveConfig) {
		if !(f > 1) || math.IsInf(f, 1) { // !(> 1) also catches NaN
			invalid("WithLatencyTolerance(%v): f must be > 1 and finite", f)
			return
		}
		c.tolerance = f
	})
}

// limiter is the adaptive limit. It shares the shedder's semaphore, whose
// capacity is the upper bound: a token in it is either a request in flight
// or a slot the limiter holds back, and the limit is the capacity less the
// slots held back. Lowering the limit holds back free slots at once and, if
// there are not enough, the next slots that requests release (owed).
//
// The control loop runs inline, in the request that closes a window, so the
// limiter starts no goroutine and needs no Close.
type limiter struct {
	sem   chan struct{}
	cfg   adaptiveConfig
	epoch time.Time // latencies are measured on the monotonic clock since epoch

	// Written by every request, on a cache line of their own.
	_       [64]byte
	samples atomic.Int64 // samples in the window
	sum     atomic.Int64 // their latency sum, ns (292 years before it wraps)
	_       [48]byte

	// Read by every request, written rarely.
	sampleFrom atomic.Int64 // ns since epoch: requests admitted before it are not sampled (a probe moves it)
	closeAt    atomic.Int64 // ns since epoch: the window closes no earlier
	need       atomic.Int64 // samples the window needs to close
	owed       atomic.Int64 // slots to hold back as requests release them
	reached    atomic.Bool  // a request found the limit reached in this window
	_          [64]byte

	held    atomic.Int64 // slots held back
	current atomic.Int64 // the limit in force

	// Read by the metric callback.
	decided atomic.Int64 // the limit, not counting a probe's cut
	latency atomic.Int64 // ns, average of the last window
	noLoad  atomic.Int64 // ns, the last no-load measurement

	mu       sync.Mutex // the control loop; fields below
	limit    float64
	base     int64 // no-load latency, ns
	probing  bool
	preProbe float64 // limit to restore after the probe
	windows  int     // since the last probe
	slow     bool    // slow start: double while latency stays low
	logged   int64   // limit last logged
	changed  *logKey
}

func newLimiter(cfg adaptiveConfig, changed *logKey) *limiter {
	l := &limiter{
		sem:     make(chan struct{}, cfg.hi),
		cfg:     cfg,
		epoch:   time.Now(),
		limit:   float64(cfg.lo),
		slow:    true,
		logged:  int64(cfg.lo),
		changed: changed,
	}
	l.current.Store(int64(cfg.hi))
	l.apply(float64(cfg.lo))
	// The first window measures the no-load latency at the lower bound.
	l.startProbe(0, float64(cfg.lo))
	return l
}

// now returns the monotonic time since epoch, in ns.
func (l *limiter) now() int64 { return int64(time.Since(l.epoch)) }

// limitReached records that a request found no free slot.
func (l *limiter) limitReached() {
	if !l.reached.Load() {
		l.reached.Store(true)
	}
}

// done samples the latency of a request admitted at start, releases its
// slot and, if the window is complete, updates the limit.
func (l *limiter) done(start int64) {
	now := l.now()
	l.release()
	if start < l.sampleFrom.Load() {
		return
	}
	l.sum.Add(now - start)
	if l.samples.Add(1) >= l.need.Load() && now >= l.closeAt.Load() {
		l.update(now)
	}
}

// release frees a request's slot, or holds it back if the limit owes one.
func (l *limiter) release() {
	for {
		o := l.owed.Load()
		if o <= 0 {
			<-l.sem
			return
		}
		if l.owed.CompareAndSwap(o, o-1) {
			l.held.Add(1)
			return
		}
	}
}

// inFlight returns the requests in flight.
func (l *limiter) inFlight() int64 {
	return max(0, int64(len(l.sem))-l.held.Load())
}

// update closes the window at now and moves the limit. One request at a
// time runs it; the others go on.
func (l *limiter) update(now int64) {
	if !l.mu.TryLock() {
		return
	}
	if l.samples.Load() < l.need.Load() || now < l.closeAt.Load() {
		l.mu.Unlock() // another request closed this window
		return
	}
	// A sample that lands between the two swaps counts its latency in one
	// window and itself in the next: an error of one sample in hundreds.
	n, sum := l.samples.Swap(0), l.sum.Swap(0)
	reached := l.reached.Swap(false)
	avg := max(1, sum/max(1, n))
	if l.probing {
		l.base = avg
		l.noLoad.Store(avg)
		l.probing = false
		l.windows = 0
		l.sampleFrom.Store(now) // not the requests admitted at the probe's low limit
		l.apply(l.preProbe)
	} else {
		l.latency.Store(avg)
		l.base = min(l.base, avg)
		l.move(float64(l.base)/float64(avg), reached)
	}
	l.windows++
	switch {
	case l.windows > probeEvery && reached:
		l.startProbe(now, l.limit)
	case l.slow: // slow start: a window is two rounds of samples, however short
		l.need.Store(max(windowSamples, 2*l.current.Load()))
		l.closeAt.Store(now)
	default:
		l.need.Store(max(windowSamples, 2*l.current.Load()))
		l.closeAt.Store(now + int64(windowMin))
	}
	cur := int64(math.Round(l.limit)) // the limit the loop set, not the probe's cut
	log := float64(cur) >= float64(l.logged)*logChangeRatio || float64(cur)*logChangeRatio <= float64(l.logged)
	from := l.logged
	if log {
		l.logged = cur
	}
	base := l.base
	l.mu.Unlock()
	if log {
		l.changed.log(context.Background(), slog.LevelInfo, func(r *slog.Record) {
			r.AddAttrs(slog.Int64("limit", cur), slog.Int64("previous", from),
				slog.Duration("latency", time.Duration(avg)), slog.Duration("no_load_latency", time.Duration(base)))
		})
	}
}

// move moves the limit after a window whose latency was 1/ratio times the
// no-load latency; reached says whether a request found the limit reached.
func (l *limiter) move(ratio float64, reached bool) {
	g := min(maxGradient, max(minGradient, l.cfg.tolerance*ratio))
	if !reached {
		g = min(g, 1) // no evidence that a higher limit would be used
	}
	if g < 1 {
		l.slow = false
	}
	switch {
	case l.slow && g > 1:
		l.apply(l.limit * maxGradient) // slow start: double while latency stays low
	case !l.slow:
		target := l.limit * g
		if reached {
			target += headroom
		}
		l.apply(l.limit + smoothing*(target-l.limit))
	}
}

// startProbe cuts the limit so that the next window measures the no-load
// latency, then restores restore.
func (l *limiter) startProbe(now int64, restore float64) {
	l.probing = true
	l.preProbe = restore
	l.apply(math.Ceil(restore / (l.cfg.tolerance + 1)))
	l.need.Store(probeSamples)
	l.closeAt.Store(now)
	l.sampleFrom.Store(now)
}

// apply sets the limit to f, within the bounds, holding back or giving back
// slots. The caller holds mu or owns l.
func (l *limiter) apply(f float64) {
	f = min(float64(l.cfg.hi), max(float64(l.cfg.lo), f))
	n := int64(math.Round(f))
	if !l.probing {
		l.limit = f
		l.decided.Store(n)
	}
	old := l.current.Swap(n)
	for k := old - n; k > 0; k-- { // hold back k slots
		select {
		case l.sem <- struct{}{}:
			l.held.Add(1)
		default:
			l.owed.Add(k) // all in use: take them as they are released
			return
		}
	}
	for k := n - old; k > 0; { // give back k slots, first those still owed
		o := l.owed.Load()
		if o > 0 {
			if t := min(o, k); l.owed.CompareAndSwap(o, o-t) {
				k -= t
			}
			continue
		}
		<-l.sem
		l.held.Add(-1)
		k--
	}
}

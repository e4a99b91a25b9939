package window

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Counter is a rolling counter. It is safe for concurrent use. The zero
// value is not usable: use New.
type Counter struct {
	width   int64 // nanoseconds per bucket
	buckets int64
	series  int

	mu     sync.Mutex
	newest int64   // absolute slot (UnixNano / width) of the newest bucket; noSlot until the first stamp
	counts []int64 // buckets × series; bucket of slot s at (s mod buckets)*series

	pending []paddedInt64 // per series, added with AddDeferred, not yet stamped
}

// noSlot marks a Counter that has not stamped anything yet.
const noSlot = math.MinInt64

type paddedInt64 struct {
	atomic.Int64
	_ [56]byte // keep series on their own cache lines
}

// New returns a Counter covering window, split into buckets buckets of equal
// width, with series independent counts per bucket. buckets and series must
// be positive and window a positive multiple of buckets nanoseconds; the
// callers pass constants.
func New(window time.Duration, buckets, series int) *Counter {
	return &Counter{
		width:   int64(window) / int64(buckets),
		buckets: int64(buckets),
		series:  series,
		newest:  noSlot,
		counts:  make([]int64, buckets*series),
		pending: make([]paddedInt64, series),
	}
}

func (c *Counter) slot(t time.Time) int64 { return t.UnixNano() / c.width }

// offset returns the index in counts of the bucket of slot s, also for a
// negative slot (a time before 1970).
func (c *Counter) offset(s int64) int {
	return int((s%c.buckets+c.buckets)%c.buckets) * c.series
}

// rotate moves the newest bucket to now's slot, clearing the buckets in
// between. A clock that steps back counts into the newest bucket. c.mu held.
func (c *Counter) rotate(now time.Time) {
	s := c.slot(now)
	if s <= c.newest {
		return
	}
	if c.newest == noSlot || s-c.newest >= c.buckets {
		clear(c.counts)
	} else {
		for i := c.newest + 1; i <= s; i++ {
			b := c.offset(i)
			clear(c.counts[b : b+c.series])
		}
	}
	c.newest = s
}

// current returns the offset of the newest bucket after rotating to now and
// stamping pending counts into it. c.mu held.
func (c *Counter) current(now time.Time) int {
	c.rotate(now)
	b := c.offset(c.newest)
	for i := range c.pending {
		if c.pending[i].Load() != 0 {
			c.counts[b+i] += c.pending[i].Swap(0)
		}
	}
	return b
}

// Add adds n to series s in the bucket of now. s must be in [0, series).
func (c *Counter) Add(now time.Time, s int, n int64) {
	c.mu.Lock()
	b := c.current(now)
	c.counts[b+s] += n
	c.mu.Unlock()
}

// AddDeferred adds n to series s without a time or the lock. The count is
// stamped into the bucket of the time given to the next Add, Flush or
// Sums. It returns the series' pending (unstamped) count, so a caller can
// Flush every k deferred adds.
func (c *Counter) AddDeferred(s int, n int64) int64 {
	return c.pending[s].Add(n)
}

// Flush stamps pending deferred counts into the bucket of now.
func (c *Counter) Flush(now time.Time) {
	c.mu.Lock()
	c.current(now)
	c.mu.Unlock()
}

// Sums stores each series' sum over the window ending at now, deferred
// counts included, in dst[s], for s < len(dst) and s < series.
func (c *Counter) Sums(now time.Time, dst []int64) {
	n := min(len(dst), c.series)
	clear(dst[:n])
	c.mu.Lock()
	c.current(now)
	for i, v := range c.counts {
		if s := i % c.series; s < n {
			dst[s] += v
		}
	}
	c.mu.Unlock()
}

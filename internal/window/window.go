package window

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidConfig is wrapped by every error New returns.
var ErrInvalidConfig = errors.New("window: invalid config")

// MaxBuckets and MaxSeries bound the memory one Counter can use.
const (
	MaxBuckets = 1 << 12
	MaxSeries  = 64
)

// Counter is a rolling counter. It is safe for concurrent use.
type Counter struct {
	now     func() time.Time
	width   int64 // nanoseconds per bucket
	buckets int64
	series  int

	mu     sync.Mutex
	newest int64   // absolute slot (UnixNano / width) of the newest bucket
	counts []int64 // buckets × series; bucket of slot s at (s mod buckets)*series

	pending []paddedInt64 // per series, added with AddDeferred, not yet stamped
}

type paddedInt64 struct {
	atomic.Int64
	_ [56]byte // keep series on their own cache lines
}

// New returns a Counter covering window, split into buckets buckets of equal
// width, with series independent counts per bucket. now is the clock; nil
// means time.Now. window must be a positive multiple of buckets nanoseconds.
func New(window time.Duration, buckets, series int, now func() time.Time) (*Counter, error) {
	switch {
	case buckets < 1 || buckets > MaxBuckets:
		return nil, fmt.Errorf("%w: buckets %d out of range [1, %d]", ErrInvalidConfig, buckets, MaxBuckets)
	case series < 1 || series > MaxSeries:
		return nil, fmt.Errorf("%w: series %d out of range [1, %d]", ErrInvalidConfig, series, MaxSeries)
	case window <= 0 || window%time.Duration(buckets) != 0:
		return nil, fmt.Errorf("%w: window %v is not a positive multiple of %d buckets", ErrInvalidConfig, window, buckets)
	}
	if now == nil {
		now = time.Now
	}
	c := &Counter{
		now:     now,
		width:   int64(window) / int64(buckets),
		buckets: int64(buckets),
		series:  series,
		counts:  make([]int64, buckets*series),
		pending: make([]paddedInt64, series),
	}
	c.newest = c.slot(now())
	return c, nil
}

// Window returns the span the counter covers.
func (c *Counter) Window() time.Duration { return time.Duration(c.width * c.buckets) }

// Series returns the number of series.
func (c *Counter) Series() int { return c.series }

func (c *Counter) slot(t time.Time) int64 { return t.UnixNano() / c.width }

// rotate moves the newest bucket to now's slot, clearing the buckets in
// between. A clock that steps back counts into the newest bucket. c.mu held.
func (c *Counter) rotate() {
	s := c.slot(c.now())
	if s <= c.newest {
		return
	}
	n := s - c.newest
	if n >= c.buckets {
		clear(c.counts)
	} else {
		for i := c.newest + 1; i <= s; i++ {
			b := int(i%c.buckets) * c.series
			clear(c.counts[b : b+c.series])
		}
	}
	c.newest = s
}

// current returns the offset of the newest bucket after rotating and
// stamping pending counts into it. c.mu held.
func (c *Counter) current() int {
	c.rotate()
	b := int(c.newest%c.buckets) * c.series
	for i := range c.pending {
		if c.pending[i].Load() != 0 {
			c.counts[b+i] += c.pending[i].Swap(0)
		}
	}
	return b
}

// Add adds n to series s in the current bucket. s must be in [0, Series()).
func (c *Counter) Add(s int, n int64) {
	c.mu.Lock()
	b := c.current()
	c.counts[b+s] += n
	c.mu.Unlock()
}

// AddDeferred adds n to series s without reading the clock or taking the
// lock. The count is stamped into the bucket current at the next Add, Flush,
// Sum or Sums. It returns the series' pending (unstamped) count, so a caller
// can Flush every k deferred adds.
func (c *Counter) AddDeferred(s int, n int64) int64 {
	return c.pending[s].Add(n)
}

// Flush stamps pending deferred counts into the current bucket.
func (c *Counter) Flush() {
	c.mu.Lock()
	c.current()
	c.mu.Unlock()
}

// Sum returns series s summed over the window, including deferred counts.
func (c *Counter) Sum(s int) int64 {
	c.mu.Lock()
	c.current()
	var t int64
	for i := s; i < len(c.counts); i += c.series {
		t += c.counts[i]
	}
	c.mu.Unlock()
	return t
}

// Sums stores each series' sum over the window in dst[s], for s < len(dst)
// and s < Series(), with a single clock read.
func (c *Counter) Sums(dst []int64) {
	n := min(len(dst), c.series)
	clear(dst[:n])
	c.mu.Lock()
	c.current()
	for i, v := range c.counts {
		if s := i % c.series; s < n {
			dst[s] += v
		}
	}
	c.mu.Unlock()
}

// Reset clears every bucket and pending count.
func (c *Counter) Reset() {
	c.mu.Lock()
	clear(c.counts)
	for i := range c.pending {
		c.pending[i].Store(0)
	}
	c.newest = c.slot(c.now())
	c.mu.Unlock()
}

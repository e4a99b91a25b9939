package breaker

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/blastradius/blastradius/internal/window"
)

// windowBuckets is the number of buckets of every rolling window here.
const windowBuckets = 10

// depositFlushEvery is how many deposits may wait unstamped (no clock read)
// before one of them stamps them into the window.
const depositFlushEvery = 64

// budget window series.
const (
	seriesRequests = iota
	seriesRetries  // retries paid for by the ratio, not by the floor
)

// Budget is a retry budget with the semantics of Finagle's RetryBudget and
// Linkerd's retry budgets: a retry is allowed while the retries of the last
// window stay within a ratio of that window's requests, plus a floor of
// retries per second that is always available. Every call through a breaker
// with retries deposits one request; every retry withdraws one. A Budget is
// safe for concurrent use and may be shared (WithBudget) by several breakers
// and transports, which then retry out of one pool.
//
// Deposits do not read the clock: they are counted with an atomic and
// stamped into the window at the next retry decision, or every 64 deposits,
// whichever comes first, so the first successful attempt of a call stays
// cheap. Retries paid for by the floor do not consume the ratio.
type Budget struct {
	ratio float64
	win   *window.Counter
	floor *rate.Limiter // nil without a floor
	now   func() time.Time
	mu    sync.Mutex
}

// NewBudget returns a Budget. It accepts WithBudgetRatio,
// WithBudgetMinPerSecond, WithBudgetWindow and WithClock; any other option
// is an error wrapping ErrInvalidConfig.
func NewBudget(opts ...Option) (*Budget, error) {
	c := defaults()
	for _, o := range opts {
		if _, ok := o.(budgetOption); !ok {
			return nil, fmt.Errorf("%w: option %T does not apply to a budget", ErrInvalidConfig, o)
		}
		o.apply(&c)
	}
	if len(c.errs) > 0 {
		return nil, c.errs[0]
	}
	return newBudget(&c)
}

func newBudget(c *config) (*Budget, error) {
	w := c.budgetWindow - c.budgetWindow%windowBuckets
	b := &Budget{ratio: c.budgetRatio, win: window.New(w, windowBuckets, 2), now: c.now}
	if c.budgetMin > 0 {
		b.floor = rate.NewLimiter(rate.Limit(c.budgetMin), int(math.Ceil(c.budgetMin)))
	}
	return b, nil
}

// deposit counts one request. It reads no clock except once every
// depositFlushEvery calls.
func (b *Budget) deposit() {
	if b.win.AddDeferred(seriesRequests, 1)%depositFlushEvery == 0 {
		b.win.Flush(b.now())
	}
}

// withdraw reports whether one retry is allowed, and if so counts it.
func (b *Budget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var s [2]int64
	b.win.Sums(now, s[:])
	if float64(s[seriesRetries]+1) <= b.ratio*float64(s[seriesRequests]) {
		b.win.Add(now, seriesRetries, 1)
		return true
	}
	return b.floor != nil && b.floor.AllowN(now, 1)
}

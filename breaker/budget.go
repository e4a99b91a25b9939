package breaker

import (
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
// and transports, which then retry out of one pool. It reads the time from
// the breaker that draws on it (WithClock). The zero value is not usable:
// use NewBudget.
//
// Deposits do not read the clock: they are counted with an atomic and
// stamped into the window at the next retry decision, or every 64 deposits,
// whichever comes first, so the first successful attempt of a call stays
// cheap. Retries paid for by the floor do not consume the ratio.
type Budget struct {
	ratio float64
	win   *window.Counter
	floor *rate.Limiter // nil without a floor
	mu    sync.Mutex
}

// NewBudget returns a Budget to share between breakers (WithBudget). An
// invalid option yields an error wrapping ErrInvalidConfig.
func NewBudget(opts ...BudgetOption) (*Budget, error) {
	c := defaultBudget()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyBudget(&c); err != nil {
			return nil, err
		}
	}
	return newBudget(c), nil
}

func newBudget(c budgetConfig) *Budget {
	w := c.window - c.window%windowBuckets
	b := &Budget{ratio: c.ratio, win: window.New(w, windowBuckets, 2)}
	if c.minPerSecond > 0 {
		b.floor = rate.NewLimiter(rate.Limit(c.minPerSecond), int(math.Ceil(c.minPerSecond)))
	}
	return b
}

// deposit counts one request. It reads now only once every
// depositFlushEvery calls.
func (b *Budget) deposit(now func() time.Time) {
	if b.win.AddDeferred(seriesRequests, 1)%depositFlushEvery == 0 {
		b.win.Flush(now())
	}
}

// withdraw reports whether one retry is allowed at now, and if so counts
// it.
func (b *Budget) withdraw(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s [2]int64
	b.win.Sums(now, s[:])
	if float64(s[seriesRetries]+1) <= b.ratio*float64(s[seriesRequests]) {
		b.win.Add(now, seriesRetries, 1)
		return true
	}
	return b.floor != nil && b.floor.AllowN(now, 1)
}

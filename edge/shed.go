package edge

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/blastradius/blastradius/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"
)

// ShedOption configures Shed. Every Option is a ShedOption. A nil
// ShedOption is skipped.
type ShedOption interface {
	applyShed(*shedConfig)
}

type shedConfig struct {
	common
	inFlight inFlightConfig
	limit    rate.Limit
	burst    int
	bypass   func(*http.Request) bool
	now      func() time.Time
}

type shedOption func(*shedConfig)

func (o shedOption) applyShed(c *shedConfig) { o(c) }

// InFlightOption configures the in-flight cap of WithMaxInFlight. A nil
// InFlightOption is skipped.
type InFlightOption interface {
	applyInFlight(*inFlightConfig)
}

type inFlightConfig struct {
	n          int // 0: no cap
	queueDepth int
	queueWait  time.Duration
	retryAfter time.Duration
}

type inFlightOption func(*inFlightConfig)

func (o inFlightOption) applyInFlight(c *inFlightConfig) { o(c) }

// WithMaxInFlight caps the requests Shed lets run at once. A request over
// the cap waits in the queue (WithQueue) or gets a 503 with Retry-After
// (WithRetryAfter). n must be > 0. Default no cap.
func WithMaxInFlight(n int, opts ...InFlightOption) ShedOption {
	return shedOption(func(c *shedConfig) {
		if n <= 0 {
			invalid("WithMaxInFlight(%d): n must be > 0", n)
			return
		}
		c.inFlight = inFlightConfig{n: n, retryAfter: time.Second}
		for _, o := range opts {
			if o != nil {
				o.applyInFlight(&c.inFlight)
			}
		}
	})
}

// WithQueue lets up to depth requests over the in-flight cap wait up to wait
// for a slot, after which they get a 503. Both must be > 0. Default no queue.
func WithQueue(depth int, wait time.Duration) InFlightOption {
	return inFlightOption(func(c *inFlightConfig) {
		if depth <= 0 || wait <= 0 {
			invalid("WithQueue(%d, %v): depth and wait must be > 0", depth, wait)
			return
		}
		c.queueDepth, c.queueWait = depth, wait
	})
}

// WithRetryAfter sets the Retry-After of a 503, rounded up to whole seconds
// (at least 1) and capped at MaxRetryAfter. d must be > 0. Default 1 second.
func WithRetryAfter(d time.Duration) InFlightOption {
	return inFlightOption(func(c *inFlightConfig) {
		if d <= 0 {
			invalid("WithRetryAfter(%v): d must be > 0", d)
			return
		}
		c.retryAfter = d
	})
}

// WithRate enforces a token-bucket rate of limit requests per second with the
// given burst (golang.org/x/time/rate). A request over the rate gets a 429
// whose Retry-After is the limiter's delay for one token, rounded up to whole
// seconds and capped at MaxRetryAfter. limit and burst must be > 0 (NaN is
// invalid); rate.Inf or +Inf means no rate limit, as in x/time/rate.
// Default no rate limit.
func WithRate(limit rate.Limit, burst int) ShedOption {
	return shedOption(func(c *shedConfig) {
		if !(limit > 0) || burst <= 0 { // !(> 0) also catches NaN
			invalid("WithRate(%v, %d): rate and burst must be > 0", float64(limit), burst)
			return
		}
		if math.IsInf(float64(limit), 1) {
			limit = rate.Inf
		}
		c.limit, c.burst = limit, burst
	})
}

// WithClock sets the clock of the rate limiter (WithRate). Nil means
// time.Now.
func WithClock(now func() time.Time) ShedOption {
	return shedOption(func(c *shedConfig) { c.now = now })
}

// WithBypass lets requests for which fn returns true skip all shedding, for
// example health checks.
func WithBypass(fn func(*http.Request) bool) ShedOption {
	return shedOption(func(c *shedConfig) { c.bypass = fn })
}

// shedReason says why Shed refused a request; it is the reason attribute
// of blastradius.edge.shed.
type shedReason uint8

const (
	shedConcurrency  shedReason = iota // in-flight cap reached and no queue slot
	shedQueueTimeout                   // waited in the queue without getting a slot (or the client left)
	shedRate                           // over the token-bucket rate
	numShedReasons
)

var shedNames = [numShedReasons]string{"concurrency", "queue_timeout", "rate"}

func (r shedReason) String() string {
	if r < numShedReasons {
		return shedNames[r]
	}
	return "shedReason(" + strconv.Itoa(int(r)) + ")"
}

type shedder struct {
	cfg      shedConfig
	now      func() time.Time
	lim      *rate.Limiter
	sem      chan struct{}
	waiting  atomic.Int64
	logKeys  [numShedReasons]*logKey // "edge: request shed" per reason
	shed     metric.Int64Counter
	addOpts  [numShedReasons][]metric.AddOption
	retry503 string
	retry    [61]string // Retry-After values 0..60 s, precomputed
}

// Shed returns middleware that sheds load instead of queueing it without
// bound:
//
//   - WithRate: a token bucket; over the rate the answer is 429 with
//     Retry-After (checked first, so a rate-limited request never takes an
//     in-flight slot);
//   - WithMaxInFlight: a cap on requests in flight; over it, a request waits
//     in a bounded queue (WithQueue) or is answered 503 with Retry-After
//     (WithRetryAfter);
//   - WithBypass: requests that skip both, such as health checks.
//
// Without any of these options Shed passes every request through. Refusals
// are counted in blastradius.edge.shed by reason and logged through a log
// budget at Warn. Shed panics at construction if an option is invalid (see
// ErrInvalidConfig).
func Shed(opts ...ShedOption) Middleware {
	s := &shedder{}
	for _, o := range opts {
		if o != nil {
			o.applyShed(&s.cfg)
		}
	}
	s.now = s.cfg.now
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.limit > 0 && s.cfg.limit != rate.Inf {
		s.lim = rate.NewLimiter(s.cfg.limit, s.cfg.burst)
	}
	for i := range s.retry {
		s.retry[i] = strconv.Itoa(i)
	}
	if s.cfg.inFlight.n > 0 {
		s.sem = make(chan struct{}, s.cfg.inFlight.n)
		s.retry503 = s.retryAfter(s.cfg.inFlight.retryAfter)
	}
	budget := s.cfg.budget()
	for r := range numShedReasons {
		s.logKeys[r] = newLogKey(budget, "edge: request shed", r.String())
	}
	s.shed = telemetry.Counter(telemetry.Meter(s.cfg.mp, "edge"), "blastradius.edge.shed",
		"Requests refused by edge.Shed, by reason.", "{request}")
	for r := range numShedReasons {
		s.addOpts[r] = telemetry.AddOpts(attribute.String("reason", r.String()))
	}
	return s.wrap
}

// MaxRetryAfter caps every Retry-After that edge sends: a longer wait (a
// very slow rate, a long WithRetryAfter) is sent as one day, 86400 seconds.
const MaxRetryAfter = 24 * time.Hour

// retryAfter returns the Retry-After value for d: whole seconds rounded up,
// at least 1, at most MaxRetryAfter.
func (s *shedder) retryAfter(d time.Duration) string {
	d = min(d, MaxRetryAfter) // before rounding up, which could overflow
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	if secs < int64(len(s.retry)) {
		return s.retry[secs]
	}
	return strconv.FormatInt(secs, 10)
}

// tokenWait returns how long from now the limiter takes to hold one whole
// token, without reserving it.
func (s *shedder) tokenWait(now time.Time) time.Duration {
	need := 1 - s.lim.TokensAt(now)
	if need <= 0 {
		return 0 // a request later on the clock refilled the bucket since AllowN
	}
	secs := need / float64(s.cfg.limit)
	if secs >= MaxRetryAfter.Seconds() { // also +Inf, and beyond time.Duration
		return MaxRetryAfter
	}
	return time.Duration(secs * float64(time.Second))
}

func (s *shedder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.bypass != nil && s.cfg.bypass(r) {
			next.ServeHTTP(w, r)
			return
		}
		if s.lim != nil {
			// AllowN takes a token or nothing: a refused request leaves the
			// bucket as it was. (Reserve-then-cancel would not: concurrent
			// cancellations restore less than they reserved, so a refusal
			// storm would put the bucket in debt.)
			now := s.now()
			if !s.lim.AllowN(now, 1) {
				s.refuse(w, r, shedRate, http.StatusTooManyRequests, s.retryAfter(s.tokenWait(now)))
				return
			}
		}
		if s.sem != nil {
			select {
			case s.sem <- struct{}{}:
			default:
				if reason, ok := s.wait(r.Context()); !ok {
					s.refuse(w, r, reason, http.StatusServiceUnavailable, s.retry503)
					return
				}
			}
			defer func() { <-s.sem }()
		}
		next.ServeHTTP(w, r)
	})
}

// wait queues for an in-flight slot, if the queue has room.
func (s *shedder) wait(ctx context.Context) (shedReason, bool) {
	if s.cfg.inFlight.queueDepth == 0 {
		return shedConcurrency, false
	}
	if s.waiting.Add(1) > int64(s.cfg.inFlight.queueDepth) {
		s.waiting.Add(-1)
		return shedConcurrency, false
	}
	defer s.waiting.Add(-1)
	t := time.NewTimer(s.cfg.inFlight.queueWait)
	defer t.Stop()
	select {
	case s.sem <- struct{}{}:
		return 0, true
	case <-t.C:
	case <-ctx.Done():
	}
	return shedQueueTimeout, false
}

func (s *shedder) refuse(w http.ResponseWriter, r *http.Request, reason shedReason, code int, retry string) {
	ctx := r.Context()
	s.shed.Add(ctx, 1, s.addOpts[reason]...)
	s.logKeys[reason].log(ctx, slog.LevelWarn, func(rec *slog.Record) {
		rec.AddAttrs(slog.String("path", r.URL.Path))
	})
	w.Header().Set("Retry-After", retry) // a slice of its own: a later middleware may edit it in place
	w.WriteHeader(code)
}

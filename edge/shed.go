package edge

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/blastradius/blastradius/internal/telemetry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
)

// ShedOption configures Shed. Every Option is a ShedOption. A nil
// ShedOption is skipped.
type ShedOption interface {
	applyShed(*shedConfig)
}

type shedConfig struct {
	common
	maxInFlight int             // WithMaxInFlight; 0: none
	adaptive    *adaptiveConfig // WithAdaptiveLimit; nil: none
	over        overLimit       // what happens over either limit
	limit       rate.Limit
	burst       int
	bypass      func(*http.Request) bool
	now         func() time.Time
}

type shedOption func(*shedConfig)

func (o shedOption) applyShed(c *shedConfig) { o(c) }

// InFlightOption configures the in-flight cap of WithMaxInFlight. A nil
// InFlightOption is skipped.
type InFlightOption interface {
	applyInFlight(*inFlightConfig)
}

type inFlightConfig struct {
	overLimit
}

// overLimit says what happens to a request over the in-flight limit, static
// or adaptive.
type overLimit struct {
	queueDepth int
	queueWait  time.Duration
	retryAfter time.Duration
}

func defaultOverLimit() overLimit { return overLimit{retryAfter: time.Second} }

// LimitOption configures what happens to a request over a limit on requests
// in flight: both WithMaxInFlight and WithAdaptiveLimit accept it. A nil
// LimitOption is skipped.
type LimitOption interface {
	InFlightOption
	AdaptiveOption
}

type limitOption func(*overLimit)

func (o limitOption) applyInFlight(c *inFlightConfig) { o(&c.overLimit) }
func (o limitOption) applyAdaptive(c *adaptiveConfig) { o(&c.overLimit) }

// WithMaxInFlight caps the requests Shed lets run at once at n. A request
// over the cap waits in the queue (WithQueue) or gets a 503 with Retry-After
// (WithRetryAfter). n must be > 0. Default no cap.
//
// A cap that works is close to what the handler can run at once without
// queueing inside: for a handler bound by a pool of k connections or
// workers, about k to 2k; for a CPU-bound one, about 1 to 2 per core. A cap
// far above that (say 512 on a handler that runs 8 at a time) lets requests
// queue inside the handler and protects nothing until latency has grown by
// the same factor. WithAdaptiveLimit finds the number by itself. The two are
// exclusive: Shed panics if given both.
func WithMaxInFlight(n int, opts ...InFlightOption) ShedOption {
	return shedOption(func(c *shedConfig) {
		if n <= 0 {
			invalid("WithMaxInFlight(%d): n must be > 0", n)
			return
		}
		if c.adaptive != nil {
			invalid("WithMaxInFlight(%d) after WithAdaptiveLimit: use one of them", n)
			return
		}
		cfg := inFlightConfig{overLimit: defaultOverLimit()}
		for _, o := range opts {
			if o != nil {
				o.applyInFlight(&cfg)
			}
		}
		c.maxInFlight, c.over = n, cfg.overLimit
	})
}

// WithQueue lets up to depth requests over the in-flight limit wait up to
// wait for a slot, after which they get a 503. Both must be > 0. Default no
// queue.
func WithQueue(depth int, wait time.Duration) LimitOption {
	return limitOption(func(c *overLimit) {
		if depth <= 0 || wait <= 0 {
			invalid("WithQueue(%d, %v): depth and wait must be > 0", depth, wait)
			return
		}
		c.queueDepth, c.queueWait = depth, wait
	})
}

// WithRetryAfter sets the Retry-After of a 503, rounded up to whole seconds
// (at least 1) and capped at MaxRetryAfter. d must be > 0. Default 1 second.
func WithRetryAfter(d time.Duration) LimitOption {
	return limitOption(func(c *overLimit) {
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
	cfg        shedConfig
	now        func() time.Time
	lim        *rate.Limiter
	sem        chan struct{} // a token per request in flight (and, adaptive, per slot held back)
	adapt      *limiter      // WithAdaptiveLimit; nil: none or static
	waiting    atomic.Int64
	logKeys    [numShedReasons]*logKey // "edge: request shed" per reason
	shed       metric.Int64Counter
	addOpts    [numShedReasons][]metric.AddOption
	reasonAttr [numShedReasons]attribute.KeyValue
	retry503   string
	retry      [61]string // Retry-After values 0..60 s, precomputed
}

// Shed returns middleware that sheds load instead of queueing it without
// bound:
//
//   - WithRate: a token bucket; over the rate the answer is 429 with
//     Retry-After (checked first, so a rate-limited request never takes an
//     in-flight slot);
//   - WithAdaptiveLimit or WithMaxInFlight: a limit on requests in flight,
//     found from measured latency or fixed; over it, a request waits in a
//     bounded queue (WithQueue) or is answered 503 with Retry-After
//     (WithRetryAfter);
//   - WithBypass: requests that skip all of these, such as health checks.
//
// Without any of these options Shed passes every request through. Refusals
// are counted in blastradius.edge.shed by reason and logged through a log
// budget at Warn; the limit on requests in flight, the requests in flight
// and, for the adaptive limit, the latencies it measures are gauges, and
// changes of the adaptive limit by half or more are logged at Info.
// Shed panics at construction if an option is invalid (see
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
	budget := s.cfg.budget()
	switch {
	case s.cfg.adaptive != nil:
		s.adapt = newLimiter(*s.cfg.adaptive, newLogKey(budget, "edge: concurrency limit changed", ""))
		s.sem = s.adapt.sem
	case s.cfg.maxInFlight > 0:
		s.sem = make(chan struct{}, s.cfg.maxInFlight)
	}
	if s.sem != nil {
		s.retry503 = s.retryAfter(s.cfg.over.retryAfter)
	}
	for r := range numShedReasons {
		s.logKeys[r] = newLogKey(budget, "edge: request shed", r.String())
	}
	meter := telemetry.Meter(s.cfg.mp, "edge")
	s.shed = telemetry.Counter(meter, "blastradius.edge.shed",
		"Requests refused by edge.Shed, by reason.", "{request}")
	s.observe(meter)
	for r := range numShedReasons {
		s.reasonAttr[r] = attribute.String("reason", r.String())
		s.addOpts[r] = telemetry.AddOpts(s.reasonAttr[r])
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
				if s.adapt != nil {
					s.adapt.limitReached()
				}
				if reason, ok := s.wait(r.Context()); !ok {
					s.refuse(w, r, reason, http.StatusServiceUnavailable, s.retry503)
					return
				}
			}
			if s.adapt != nil {
				defer s.adapt.done(s.adapt.now())
			} else {
				defer func() { <-s.sem }()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// wait queues for an in-flight slot, if the queue has room.
func (s *shedder) wait(ctx context.Context) (shedReason, bool) {
	if s.cfg.over.queueDepth == 0 {
		return shedConcurrency, false
	}
	if s.waiting.Add(1) > int64(s.cfg.over.queueDepth) {
		s.waiting.Add(-1)
		return shedConcurrency, false
	}
	defer s.waiting.Add(-1)
	span := telemetry.Recording(ctx)
	var start time.Time
	if span != nil {
		start = time.Now()
	}
	t := time.NewTimer(s.cfg.over.queueWait)
	defer t.Stop()
	reason, ok := shedQueueTimeout, false
	select {
	case s.sem <- struct{}{}:
		reason, ok = 0, true
	case <-t.C:
	case <-ctx.Done():
	}
	if span != nil {
		span.AddEvent(eventQueued, trace.WithAttributes(attribute.Float64(attrWait, time.Since(start).Seconds())))
	}
	return reason, ok
}

func (s *shedder) refuse(w http.ResponseWriter, r *http.Request, reason shedReason, code int, retry string) {
	ctx := r.Context()
	s.shed.Add(ctx, 1, s.addOpts[reason]...)
	if span := telemetry.Recording(ctx); span != nil {
		secs, _ := strconv.ParseInt(retry, 10, 64)
		span.AddEvent(eventShed, trace.WithAttributes(s.reasonAttr[reason], attribute.Int64(attrRetryAfter, secs)))
	}
	s.logKeys[reason].log(ctx, slog.LevelWarn, func(rec *slog.Record) {
		rec.AddAttrs(slog.String("path", r.URL.Path))
	})
	w.Header().Set("Retry-After", retry) // a slice of its own: a later middleware may edit it in place
	w.WriteHeader(code)
}

// observe registers the gauges of the in-flight limit, if there is one.
func (s *shedder) observe(meter metric.Meter) {
	if s.sem == nil {
		return
	}
	var errs []error
	gauge := func(name, desc, unit string) metric.Int64ObservableGauge {
		g, err := meter.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return g
	}
	seconds := func(name, desc string) metric.Float64ObservableGauge {
		g, err := meter.Float64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit("s"))
		errs = append(errs, err)
		return g
	}
	limit := gauge("blastradius.edge.shed.limit",
		"The limit of edge.Shed on requests in flight (adaptive: not counting its short no-load probes).", "{request}")
	inFlight := gauge("blastradius.edge.shed.inflight", "Requests in flight through edge.Shed's limit.", "{request}")
	insts := []metric.Observable{limit, inFlight}
	var latency, noLoad metric.Float64ObservableGauge
	if s.adapt != nil {
		latency = seconds("blastradius.edge.shed.latency",
			"Average latency of the requests edge.Shed's adaptive limit admitted, over its last window.")
		noLoad = seconds("blastradius.edge.shed.no_load_latency",
			"The no-load latency that edge.Shed's adaptive limit last measured.")
		insts = append(insts, latency, noLoad)
	}
	if err := errors.Join(errs...); err != nil {
		otel.Handle(err)
		return
	}
	_, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if s.adapt == nil {
			o.ObserveInt64(limit, int64(cap(s.sem)))
			o.ObserveInt64(inFlight, int64(len(s.sem)))
			return nil
		}
		o.ObserveInt64(limit, s.adapt.decided.Load())
		o.ObserveInt64(inFlight, s.adapt.inFlight())
		if ns := s.adapt.latency.Load(); ns > 0 {
			o.ObserveFloat64(latency, time.Duration(ns).Seconds())
		}
		if ns := s.adapt.noLoad.Load(); ns > 0 {
			o.ObserveFloat64(noLoad, time.Duration(ns).Seconds())
		}
		return nil
	}, insts...)
	if err != nil {
		otel.Handle(err)
	}
}

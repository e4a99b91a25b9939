package breaker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// drainLimit bounds how much of a failed response's body is read before it
// is closed; reading it to EOF lets the connection be reused.
const drainLimit = 64 << 10

// Transport is an http.RoundTripper that sends each request through a
// per-host Breaker, with retries, the retry budget and adaptive throttling
// as configured. It is safe for concurrent use.
//
//   - A transport error, a 5xx and a 429 are failures; any other status is a
//     success. The classifier (DefaultClassifier unless WithClassifier) sees
//     transport errors with the request's context: a request that times out,
//     by its context's deadline or by http.Client.Timeout, is a failure; one
//     the caller cancels, through its context or the deprecated
//     Request.Cancel before the deadline, is excluded.
//   - Only idempotent requests are retried: GET, HEAD, OPTIONS, PUT and
//     DELETE, and any request with an Idempotency-Key (or
//     X-Idempotency-Key) header. A request with a body is retried only if it
//     has GetBody, which replays the body (http.NewRequest sets it for
//     bytes, strings and bytes.Reader bodies).
//   - On 429 and 503, Retry-After (seconds or an HTTP date) sets the wait
//     before the retry, if longer than the backoff, capped by
//     WithRetryAfterCap however large it is; a negative or malformed value
//     is ignored. If the wait would end after the request's deadline,
//     the request is not retried.
//   - The body of every failed attempt that is retried is drained (up to 64
//     KiB) and closed, so the connection is not leaked. When retries stop,
//     the last response, even a 5xx, is returned as a response, as the base
//     transport would have.
//   - A rejection returns no response and an error that matches ErrOpen
//     (or ErrThrottled) through errors.Is, also through the *url.Error that
//     http.Client wraps it in.
//
// The zero value is not usable: use NewTransport.
type Transport struct {
	base          http.RoundTripper
	cfg           config       // of every per-host breaker
	log           *slog.Logger // shared by the per-host breakers, through one log budget
	key           func(*http.Request) string
	retryAfterCap time.Duration
	mu            sync.Mutex // serializes breaker creation
	breakers      sync.Map   // key → *Breaker
}

// NewTransport returns a Transport over base; nil base means
// http.DefaultTransport. Options configure every per-host breaker
// (WithRetries, WithAdaptiveThrottle, trip policies…); WithKeyFunc and
// WithRetryAfterCap configure the transport. Without WithBudget each host
// gets its own retry budget; pass one to share it. An invalid option yields
// an error wrapping ErrInvalidConfig that names it.
func NewTransport(base http.RoundTripper, opts ...TransportOption) (*Transport, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	c := transportConfig{breaker: defaults(), key: hostKey, retryAfterCap: DefaultRetryAfterCap}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyTransport(&c); err != nil {
			return nil, err
		}
	}
	return &Transport{base: base, cfg: c.breaker, log: budgetLogger(&c.breaker), key: c.key, retryAfterCap: c.retryAfterCap}, nil
}

func hostKey(r *http.Request) string {
	if r.URL != nil && r.URL.Host != "" {
		return r.URL.Host
	}
	return r.Host
}

// Breaker returns the breaker for key (by default a request's URL host),
// creating it if needed. The breaker for the empty key is named "(none)".
func (t *Transport) Breaker(key string) *Breaker {
	if b, ok := t.breakers.Load(key); ok {
		return b.(*Breaker)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if b, ok := t.breakers.Load(key); ok {
		return b.(*Breaker)
	}
	name := key
	if name == "" {
		name = "(none)"
	}
	b := newBreaker(name, &t.cfg, t.log)
	t.breakers.Store(key, b)
	return b
}

// CloseIdleConnections closes the base transport's idle connections, if it
// has a CloseIdleConnections method; http.Client.CloseIdleConnections calls
// it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := t.Breaker(t.key(req))
	retries := 0
	if replayable(req) {
		retries = b.retries
	}
	ctx := req.Context()
	c := &roundTrip{base: t.base, req: req, now: b.now, retryAfterCap: t.retryAfterCap}
	// The base transport gives up when Request.Cancel is closed: by
	// http.Client on its Timeout (it arms Request.Cancel for a RoundTripper
	// it does not know, such as this one), or by a caller who cancels. In
	// the second case ctx is canceled too, so the attempt is classified as
	// a caller's cancel.
	//lint:ignore SA1019 the deprecated Request.Cancel is honoured
	if req.Cancel != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		c.cancel = cancel
	}
	err := b.run(ctx, c.do, retries)
	if err == nil {
		return c.resp, nil
	}
	var se *statusError
	if errors.As(err, &se) && se == c.last && !se.released {
		return se.resp, nil
	}
	if c.last != nil && !c.last.released {
		c.last.release()
	}
	if !c.sent {
		closeBody(req)
	}
	return nil, err
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}

func idempotent(r *http.Request) bool {
	switch r.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	if _, ok := r.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := r.Header["X-Idempotency-Key"]
	return ok
}

func replayable(r *http.Request) bool {
	return idempotent(r) && (r.Body == nil || r.Body == http.NoBody || r.GetBody != nil)
}

// roundTrip is the state of one RoundTrip across its attempts.
type roundTrip struct {
	base          http.RoundTripper
	req           *http.Request
	now           func() time.Time
	retryAfterCap time.Duration
	// cancel cancels the context of the attempts, when the request has a
	// Request.Cancel; nil otherwise.
	cancel context.CancelFunc
	n      int // attempts made
	sent   bool
	resp   *http.Response // the successful response
	last   *statusError   // the latest failed response
}

func (c *roundTrip) do(ctx context.Context) error {
	r := c.req
	if c.n > 0 && r.Body != nil && r.Body != http.NoBody {
		body, err := r.GetBody()
		if err != nil {
			return err
		}
		r2 := *r
		r2.Body = body
		r = &r2
	}
	c.n++
	c.sent = true
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		if c.cancel != nil && c.legacyCanceled(ctx) {
			c.cancel()
		}
		return err
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		c.last = &statusError{resp: resp}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			c.last.wait = min(parseRetryAfter(resp.Header.Get("Retry-After"), c.now()), c.retryAfterCap)
		}
		return c.last
	}
	c.resp = resp
	return nil
}

// legacyCanceled reports whether the caller closed Request.Cancel: it is
// closed while ctx is not done and its deadline, if any, has not passed.
// When http.Client closes it on its Timeout, that deadline has passed.
func (c *roundTrip) legacyCanceled(ctx context.Context) bool {
	select {
	//lint:ignore SA1019 the deprecated Request.Cancel is honoured
	case <-c.req.Cancel:
	default:
		return false
	}
	if ctx.Err() != nil {
		return false
	}
	deadline, ok := ctx.Deadline()
	return !ok || time.Now().Before(deadline)
}

// statusError is a response that counts as a failure.
type statusError struct {
	resp     *http.Response
	wait     time.Duration // from Retry-After, capped
	released bool
}

func (e *statusError) Error() string {
	return "breaker: response " + e.resp.Status
}

func (e *statusError) retryAfter() time.Duration { return e.wait }

// release drains (bounded) and closes the body so the connection can be
// reused or is closed.
func (e *statusError) release() {
	if e.released {
		return
	}
	e.released = true
	_, _ = io.CopyN(io.Discard, e.resp.Body, drainLimit)
	_ = e.resp.Body.Close()
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
// It returns 0 for a missing, malformed or past value. A value too large
// for a time.Duration saturates at the largest one (the caller caps it);
// it never wraps.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	secs, err := strconv.ParseUint(v, 10, 64)
	if err == nil || errors.Is(err, strconv.ErrRange) { // all digits; ErrRange saturates secs
		if secs > uint64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

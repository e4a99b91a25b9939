// Package breaker stops error amplification on the calling side: when a
// dependency is sick, callers that keep hammering it turn a partial failure
// into a feedback loop (incident I1). An open breaker fails fast with
// ErrOpen and sends nothing downstream until its open duration has passed.
//
// A Breaker wraps a sony/gobreaker v2 state machine and adds error
// classification, budgeted retries, adaptive throttling, allocation-free
// OpenTelemetry metrics, and transition logs through a log budget. A
// Transport is an http.RoundTripper with one Breaker per host.
//
//	b, err := breaker.New("payments",
//		breaker.WithOpenDuration(30*time.Second),
//		breaker.WithRetries(2, breaker.WithBackoff(50*time.Millisecond, time.Second)),
//	)
//
// # Options
//
// New takes Options, NewBudget BudgetOptions and NewTransport
// TransportOptions: every Option (for the per-host breakers), WithKeyFunc
// and WithRetryAfterCap. Settings that only mean something together are
// nested: WithRetries takes the RetryOptions (backoff, jitter, what to
// retry, the budget) and WithAdaptiveThrottle the ThrottleOptions. An
// invalid option is an error wrapping ErrInvalidConfig at construction;
// nil means the default.
//
// # Trips and timing
//
// A Breaker opens after 5 consecutive failures (WithConsecutiveFailures),
// or on a failure ratio over a rolling window (WithFailureRatio). One that
// opened at t is still open at exactly t+openDuration and half-open from
// 1ns later (gobreaker compares expiry.Before(now)).
//
// # Classification
//
// nil is a success. An error is excluded (neither success nor failure) only
// when the caller went away: its ctx was canceled, with a cause other than
// context.DeadlineExceeded. Every other error is a failure, timeouts above
// all: a dependency that hangs makes its callers reach their deadlines,
// and those failures open the breaker. The rule holds on every path: Do and
// Call with a ctx deadline or cancel, and through a Transport,
// http.Client.Timeout (a failure) and the deprecated Request.Cancel
// (excluded when the caller closes it before the deadline).
// WithClassifier replaces the classification of non-nil errors; a panic in
// fn is always a failure, and is re-panicked.
//
// # Retries, throttling and the Transport
//
// Retries use backoff/v4 (jittered exponential), never sleep past ctx's
// deadline, never retry ErrOpen, and draw from a retry budget: 10% of
// recent requests plus 10 retries per second (Finagle and Linkerd
// semantics). The per-second floor belongs to each Budget: a fleet of many
// low-rate clients of one dependency should share one
// (WithRetries(n, WithBudget(b))) or lower WithBudgetMinPerSecond, or
// their floors add up.
//
// WithAdaptiveThrottle rejects locally with probability
// max(0, (requests − K·accepts)/(requests + 1)) (the Google SRE book),
// returning ErrThrottled.
//
// NewTransport gives an http.Client one breaker per host:
//
//	tr, err := breaker.NewTransport(nil, breaker.WithRetries(3), breaker.WithOpenDuration(10*time.Second))
//	client := &http.Client{Transport: tr}
//	resp, err := client.Get("http://payments.internal/v1/charge/42")
//	if errors.Is(err, breaker.ErrOpen) { /* failed fast: nothing was sent */ }
//
// It fails on transport errors, 5xx and 429; retries only idempotent
// requests (GET, HEAD, OPTIONS, PUT, DELETE, or with an Idempotency-Key),
// replays bodies through GetBody, honours Retry-After up to a cap
// (WithRetryAfterCap), and drains and closes every failed attempt's body.
//
// State-change callbacks run after gobreaker releases its lock, so they may
// call State. Do and Call allocate nothing on success, on rejection, or
// with retries enabled, whatever the meter provider.
//
// # Traces
//
// Do and Call record what the breaker did to a call as events on the span
// in the caller's ctx (through a Transport, the request's: put otelhttp's
// transport outside it), and only when that span is recording; a
// successful call records nothing, and an untraced or sampled-out call
// allocates nothing for traces. Every event has the attribute
// breaker.name. The breaker starts no span of its own, so it takes no
// tracer provider.
//
//   - blastradius.breaker.rejected: the call was rejected without calling
//     fn; reason is "open", "half-open" (its probes are all in flight) or
//     "throttled" (WithAdaptiveThrottle).
//   - blastradius.breaker.retry: a retry is about to wait; attempt is the
//     number of the attempt it will make (2 for the first retry), wait the
//     backoff in seconds, reason the failed attempt's error text (its first
//     256 bytes).
//   - blastradius.breaker.retry.stopped: retrying stopped with the call
//     failed; attempts and reason, as in the *RetryError returned.
//   - blastradius.breaker.transition: a state change, with from and to,
//     dispatched by this call: one it made (a failure that opens, a probe
//     that goes half-open and then closes) or, under concurrency, one
//     another call made just before.
package breaker

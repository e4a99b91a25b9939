// Package edge is net/http server middleware that absorbs bad tokens, panics
// and overload instead of amplifying them:
//
//   - [Auth] verifies a token and never answers 5xx for anything the client
//     sent: a bad token is classified ([Reason]), counted and logged, and the
//     request continues as anonymous (or gets a 401 with [WithRequired]).
//   - [Recover] turns a handler panic into a generic 500; the stack goes to
//     the log, not the body.
//   - [Shed] refuses what the server cannot take: over a token-bucket rate
//     with a 429, over a limit on requests in flight with a 503, both with
//     Retry-After. The limit is either found from measured latency
//     ([WithAdaptiveLimit], no number to pick) or fixed ([WithMaxInFlight],
//     which protects only if the number is close to what the handler runs
//     at once).
//
// Compose them with [Chain]; the first is the outermost:
//
//	h := edge.Chain(edge.Recover(), edge.Shed(edge.WithAdaptiveLimit()), edge.Auth(verify))(mux)
//
// http.ResponseController keeps working through the chain: every wrapped
// http.ResponseWriter implements Unwrap.
//
// Each middleware logs its per-request records through a log budget from
// the [github.com/blastradius/blastradius/logbudget] package, so a flood of
// bad tokens is a handful of log lines and one summary. Hand every
// middleware the same budgeted logger with [WithLogger] to share one budget;
// otherwise each keeps one of its own.
//
// An invalid option panics at construction, naming the option and its value
// ([ErrInvalidConfig]); nil means the default.
//
// # Auth
//
// Auth reads "Authorization: Bearer <token>" (or [WithHeader], and
// [WithCookie] when the header is absent). Tokens over 8 KiB
// ([WithMaxTokenSize]) are oversized and tokens that are not visible ASCII
// are malformed; neither reaches verify. verify reports reasons with
// [ErrMalformed], [ErrExpired], [ErrInvalid] and [ErrUnsupportedVersion]
// (matched with errors.Is); compat.ErrUnrecognized and compat.ErrSunset
// count as unsupported_version and compat.ErrTooLarge as oversized; any
// other error is invalid, and a panic in verify is recovered and is panic.
// An error after the client went away is canceled, logged at Debug. By
// default the request continues as anonymous; [WithRequired] answers 401
// with WWW-Authenticate: Bearer error="invalid_token" (plain Bearer for a
// missing token). The handler reads [PrincipalFrom] and [AuthResultFrom].
//
// # Recover
//
// Recover turns a panic into a generic 500. If the response had started,
// nothing is written and the connection is aborted (http.ErrAbortHandler),
// so the client never sees a complete-looking truncated response;
// http.ErrAbortHandler itself is re-panicked. The stack is captured only
// for the records the log budget passes.
//
// # Shed
//
// Shed applies the rate first (429, Retry-After the wait for one token,
// rounded up to whole seconds; a refused request takes no token), then the
// limit on requests in flight (503, Retry-After from [WithRetryAfter],
// default 1 s; [WithQueue] lets requests wait for a slot). Every
// Retry-After is capped at [MaxRetryAfter] (one day). [WithBypass] exempts
// requests such as health checks.
//
// The recommended limit is [WithAdaptiveLimit]: each window (at least
// 100 ms) it compares the average latency of admitted requests with the
// no-load latency, shrinks the limit when requests take more than 1.5×
// that ([WithLatencyTolerance]), and grows it when the limit was reached
// and latency is low. About every tenth window under overload it
// re-measures the no-load latency with the limit cut for 10 requests, so it
// follows a dependency that gets slower or faster. It starts at 1, doubles
// per window while latency stays low, and stays within [WithLimitBounds]
// (default 1 to 1000). Put one Shed in front of requests of similar cost.
//
// A static [WithMaxInFlight](n) protects only if n is close to what the
// handler runs at once without queueing inside: k to 2k for a handler bound
// by a pool of k connections or workers, 1 to 2 per core for a CPU-bound
// one. A cap far above that queues inside the handler and protects nothing.
// The two limits are exclusive: Shed panics if given both.
//
// Every wrapped http.ResponseWriter implements Unwrap, Flush, Hijack and
// ReadFrom, so http.ResponseController and sendfile keep working.
//
// # Traces
//
// Each middleware records what it did to a request on the span already in
// the request's context, so put the tracing handler (otelhttp's, say)
// outside the chain, where its server span reaches them. It records only
// when that span is recording: a request that is not traced, or whose
// trace is sampled out, costs at most one context lookup and no
// allocation. edge starts no span of its own, so it takes no tracer
// provider.
//
//   - [Auth] sets the span attributes blastradius.edge.auth.outcome (ok,
//     anonymous or rejected) and, for a failure, blastradius.edge.auth.reason
//     (a [Reason]); a panic in verify is also an exception event.
//   - [Shed] adds the event blastradius.edge.shed to a refused request, with
//     reason (rate, concurrency or queue_timeout) and retry_after (the
//     Retry-After sent, in seconds), and blastradius.edge.shed.queued to a
//     request that waited in the queue, with wait (seconds), when it leaves
//     the queue: before its refusal if it got no slot.
//   - [Recover] adds an exception event with exception.type (the panic
//     value's Go type) and exception.message (its text, cut to 256 bytes).
//     The stack goes to the log only: capturing one for every panic of a
//     panic storm is the cost the log budget exists to avoid.
package edge

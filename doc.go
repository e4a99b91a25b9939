// Package blastradius is an embeddable resilience library for Go services:
// it keeps small failures small. A bad token, a sick dependency or a bad
// change must stay a small problem and never become an outage.
//
// Each package answers real production incidents (see README.md):
//
//   - breaker stops error amplification on the calling side: circuit
//     breakers on gobreaker v2, budgeted retries, adaptive throttling and an
//     http.RoundTripper that honours Retry-After (incident I1).
//   - edge is server-side middleware that absorbs weirdness: bad tokens
//     become anonymous requests or 401s, never 500s; panics are recovered;
//     overload is shed with 503 and 429; logs go through a log budget
//     (incident I1).
//   - compat holds versioned compatibility parsers, so formats that changed
//     while old ones still circulate keep decoding, and tolerant JSON shapes
//     such as OneOrMany (incidents I1 and I3).
//   - rollout gates new code paths by sticky percentage, with a kill switch,
//     shadow comparison and a guard that rolls back on its own (incidents
//     I2, I4 and I5).
//   - fleet carries the same gates, kills and config to every instance of a
//     service through a store the service already runs (Redis, in the
//     nested module fleet/redisfleet), and shows which instance runs what
//     (incident I5).
//   - logbudget keeps logs within a budget; every package logs through it.
//
// They compose at the edges of a service: edge.Chain(edge.Recover(),
// edge.Shed(...), edge.Auth(decoder.Verify)) on the way in, with a compat
// decoder as the token verifier; breaker.NewTransport on the way out; and
// a rollout.Path (Run or Shadow) around every new code path in between.
// Every package reports through the OpenTelemetry API and logs through
// log/slog.
//
// # Configuration: one rule everywhere
//
// Every constructor takes its required arguments positionally and
// everything optional as With… options of a type of its own, so an option
// that means nothing to a constructor does not compile there. Options that
// only mean something together are nested (breaker.WithRetries takes the
// retry settings; rollout.WithGuard takes the guard settings).
//
// An invalid setting is found at construction, never at request time and
// never silently:
//
//   - a constructor with an error result (breaker.New, breaker.NewTransport,
//     compat.New, rollout.New, logbudget.New, …) returns an error wrapping
//     its package's ErrInvalidConfig that names the option and the value;
//   - a constructor whose signature has no error (an edge Middleware, an
//     http.Handler such as rollout.Handler) panics at construction with
//     such an error, as http.ServeMux.Handle and time.NewTicker do.
//
// NaN and ±Inf are invalid wherever a number has no such meaning. Nil means
// the default for every provider, logger and clock option:
// WithMeterProvider(nil) uses the otel global, WithLogger(nil) uses
// slog.Default(), and WithClock(nil) the real clock. A nil option is
// skipped.
//
// Traces: no package starts a span of its own, so none has a tracer
// provider option. Each records what it did (an auth outcome, a shed
// request, a breaker rejection or retry, a rollout evaluation) on the span
// already in the request's or call's context, and only when that span is
// recording.
//
// Logs: every package's WithLogger takes a *slog.Logger. If its handler is a
// *logbudget.Handler, the package logs through that budget, so one budget
// and one suppression counter can cover a whole service; otherwise the
// package wraps the logger in a budget of its own with logbudget's
// defaults.
package blastradius

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
//
// They compose at the edges of a service: edge.Chain(edge.Recover(),
// edge.Shed(...), edge.Auth(decoder.Verify)) on the way in, with a compat
// decoder as the token verifier; breaker.NewTransport on the way out; and
// rollout.Run or rollout.Shadow around every new code path in between.
// Every package reports through the OpenTelemetry API and logs through
// log/slog.
package blastradius

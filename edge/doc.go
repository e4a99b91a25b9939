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
package edge

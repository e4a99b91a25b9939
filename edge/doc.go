// Package edge is server-side net/http middleware that absorbs bad input,
// panics and overload instead of amplifying them.
//
// It answers incident I1: an auth "cleanup" made token parsing throw, old
// tokens still in the wild turned every logged-in request into a 500, stack
// traces and log lines burned CPU, and the autoscaler fed the loop. With
// edge:
//
//   - [Auth] verifies a token and never answers 5xx for anything the client
//     sent. A failure is classified ([Reason]), counted, logged within a
//     budget, and the request continues as anonymous (or gets a 401 with
//     [WithRequired]). A panicking verifier is recovered.
//   - [Recover] turns a handler panic into a generic 500 with no stack in
//     the body; the stack goes to the log within the budget.
//   - [Shed] caps requests in flight (503 with Retry-After, after an optional
//     bounded queue wait) and enforces a token-bucket rate (429 with
//     Retry-After).
//   - [LogBudget] is the slog.Handler that bounds per-request logging: at most
//     N records per key per interval, then one summary with the suppressed
//     count. Auth, Recover and Shed log through one by default.
//
// Compose them with [Chain]; the first middleware is the outermost:
//
//	h := edge.Chain(edge.Recover(), edge.Shed(edge.WithMaxInFlight(512)), edge.Auth(verify))(mux)
//
// Every wrapped http.ResponseWriter implements Unwrap, so
// http.ResponseController keeps working through the chain.
package edge

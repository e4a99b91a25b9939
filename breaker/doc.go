// Package breaker stops error amplification on the calling side of a
// blastradius service.
//
// A Breaker wraps a sony/gobreaker v2 CircuitBreaker (the state machine is
// gobreaker's, not reimplemented) and adds what production callers need on
// top: context-aware error classification, OpenTelemetry metrics recorded
// without allocation, state-change callbacks that run outside gobreaker's
// lock, and structured logging of every transition.
//
// It answers incident I1: when a dependency is sick, callers that keep
// hammering it (and log a stack trace for every failure) turn a partial
// failure into a feedback loop. An open breaker fails fast with ErrOpen and
// sends nothing downstream until the open duration has passed.
//
// # Trip policies
//
// By default a Breaker opens after 5 consecutive failures
// (WithConsecutiveFailures). WithFailureRatio trips on a failure ratio over a
// rolling window with a minimum number of calls, using gobreaker's Interval
// and BucketPeriod.
//
// # Timing
//
// A breaker that opened at time t is still open at exactly t+openDuration and
// half-open from t+openDuration+1ns on: gobreaker compares expiry.Before(now).
// The tests pin this boundary inside a testing/synctest bubble.
//
// # Classification
//
// nil is a success. An error is excluded (neither success nor failure) only
// when the caller went away: its ctx was canceled (ctx.Err() is
// context.Canceled, with a cause other than context.DeadlineExceeded). Every
// other error is a failure, and timeouts above all: an attempt cut short by
// the caller's deadline, a context.DeadlineExceeded, a net.Error timeout. A
// dependency that hangs makes every caller reach its deadline, and those
// failures open the breaker. The rule is the same on every path: Do and Call
// with a ctx deadline or cancel; and, through a Transport,
// http.Client.Timeout (a failure, however the base transport reports it)
// and the deprecated Request.Cancel (excluded when the caller closes it
// before the request's deadline). WithClassifier replaces the
// classification of non-nil errors; a panic in fn is always a failure, and
// is re-panicked after being counted.
package breaker

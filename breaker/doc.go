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
// nil is a success. context.Canceled and context.DeadlineExceeded are
// excluded (neither success nor failure) when they come from the caller's own
// ctx: the caller gave up, the dependency did not fail. Every other error is a
// failure. WithClassifier replaces the classification of non-nil errors; a
// panic in fn is always a failure, and is re-panicked after being counted.
package breaker

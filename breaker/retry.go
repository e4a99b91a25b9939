package breaker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/blastradius/blastradius/internal/telemetry"
)

// ErrRetryBudget is the cause recorded in a *RetryError when the retry
// budget denied a retry.
var ErrRetryBudget = errors.New("breaker: retry budget exhausted")

// Reasons a *RetryError gives for why retrying stopped.
const (
	ReasonExhausted    = "retries exhausted"      // every allowed retry was made
	ReasonBudget       = "retry budget exhausted" // the budget denied the next retry
	ReasonDeadline     = "deadline too close"     // the next wait would not end before ctx's deadline
	ReasonCanceled     = "context done"           // ctx was done while waiting
	ReasonOpen         = "breaker open"           // the breaker opened, so a retry would be rejected
	ReasonNotRetryable = "not retryable"          // a retry failed with an error that is not retried
)

// RetryError is returned by Do and Call when a call failed and at least one
// retry was made or denied. Err is the last attempt's error, unchanged:
// errors.Is and errors.As see through RetryError to it, and to Cause. Do
// and Call set every field; a zero RetryError describes no call.
type RetryError struct {
	// Attempts is the number of attempts made, the first one included.
	Attempts int
	// Reason says why retrying stopped; one of the Reason… constants.
	Reason string
	// Err is the last attempt's error.
	Err error
	// Cause is what stopped the retries, when it is an error: ctx.Err() for
	// ReasonCanceled, ErrRetryBudget for ReasonBudget, otherwise nil.
	Cause error
}

// Error describes the last error, the attempts and the reason.
func (e *RetryError) Error() string {
	return fmt.Sprintf("breaker: %s after attempt %d: %v", e.Reason, e.Attempts, e.Err)
}

// Unwrap returns the last attempt's error and, if set, the cause.
func (e *RetryError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// retryAfterHint is implemented by errors that carry a server's Retry-After,
// already capped (the Transport's failed responses).
type retryAfterHint interface{ retryAfter() time.Duration }

// releaser is implemented by errors holding a resource (a response body)
// that must be released before the next attempt.
type releaser interface{ release() }

type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// run is Do with a per-call retry limit. The first attempt touches neither
// the backoff nor the budget's retry side and allocates nothing.
func (b *Breaker) run(ctx context.Context, fn func(context.Context) error, retries int) error {
	if b.retries > 0 {
		b.budget.deposit(b.now)
	}
	out, err := b.attempt(ctx, fn)
	if err == nil || retries == 0 {
		return err
	}
	return b.retry(ctx, fn, retries, out, err)
}

// retryable reports whether an attempt's error may be retried.
func (b *Breaker) retryable(ctx context.Context, out int, err error) bool {
	if out == outRejected || out == outThrottled || ctx.Err() != nil ||
		errors.Is(err, ErrOpen) || errors.Is(err, ErrThrottled) {
		return false
	}
	var perm *backoff.PermanentError
	if errors.As(err, &perm) {
		return false
	}
	if b.retryIf != nil {
		return b.retryIf(err)
	}
	return out == outFailure
}

// retry is the slow path, entered after a failed first attempt.
func (b *Breaker) retry(ctx context.Context, fn func(context.Context) error, retries, out int, err error) error {
	if !b.retryable(ctx, out, err) {
		return err
	}
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     b.initial,
		RandomizationFactor: b.jitter,
		Multiplier:          backoffMultiplier,
		MaxInterval:         b.maxInterval,
		Stop:                backoff.Stop,
		Clock:               clockFunc(b.now),
	}
	bo.Reset()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	span := telemetry.Recording(ctx)
	stop := func(attempts int, reason string, cause error) error {
		if span != nil {
			span.AddEvent(eventRetryStopped, trace.WithAttributes(b.transAttr,
				attribute.Int("attempts", attempts), attribute.String("reason", reason)))
		}
		return &RetryError{Attempts: attempts, Reason: reason, Err: err, Cause: cause}
	}
	for attempts := 1; ; attempts++ {
		if attempts > retries {
			return stop(attempts, ReasonExhausted, nil)
		}
		wait := bo.NextBackOff()
		if h, ok := err.(retryAfterHint); ok {
			wait = max(wait, h.retryAfter())
		}
		now := b.now()
		if deadline, ok := ctx.Deadline(); ok && now.Add(wait).After(deadline) {
			return stop(attempts, ReasonDeadline, nil)
		}
		state := State(b.cb.State())
		b.flushIfPending(ctx)
		if state == Open {
			return stop(attempts, ReasonOpen, nil)
		}
		if !b.budget.withdraw(now) {
			b.retryCounter.Add(ctx, 1, b.retryOpts[retryDenied]...)
			return stop(attempts, ReasonBudget, ErrRetryBudget)
		}
		b.retryCounter.Add(ctx, 1, b.retryOpts[retryAttempted]...)
		if span != nil {
			span.AddEvent(eventRetry, trace.WithAttributes(b.transAttr, attribute.Int("attempt", attempts+1),
				attribute.Float64("wait", wait.Seconds()), attribute.String("reason", telemetry.Text(err.Error()))))
		}
		if r, ok := err.(releaser); ok {
			r.release()
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return stop(attempts, ReasonCanceled, ctx.Err())
		case <-timer.C:
		}
		out, err = b.attempt(ctx, fn)
		if err == nil {
			return nil
		}
		if !b.retryable(ctx, out, err) {
			if ctx.Err() != nil {
				return stop(attempts+1, ReasonCanceled, ctx.Err())
			}
			return stop(attempts+1, ReasonNotRetryable, nil)
		}
	}
}

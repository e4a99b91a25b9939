package edge

import (
	"errors"
	"fmt"
)

// Sentinel errors a verify function passed to Auth returns (or wraps) to say
// why a token failed. Auth matches them with errors.Is; any other error
// counts as ReasonInvalid.
var (
	// ErrMalformed says the token could not be parsed.
	ErrMalformed = errors.New("edge: malformed token")
	// ErrExpired says the token was valid once but has expired.
	ErrExpired = errors.New("edge: expired token")
	// ErrInvalid says the token was parsed but is not valid (bad signature,
	// unknown subject, revoked...).
	ErrInvalid = errors.New("edge: invalid token")
	// ErrUnsupportedVersion says the token is in a format or version the
	// verifier does not (or no longer) accepts.
	ErrUnsupportedVersion = errors.New("edge: unsupported token version")
)

// PanicError is the AuthResult.Err of a verify call that panicked. Its zero
// value is a panic with a nil value.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
}

// Error returns "edge: verify panicked: <value>".
func (e *PanicError) Error() string { return fmt.Sprintf("edge: verify panicked: %v", e.Value) }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Reason says why Auth did not accept a token. The zero value is
// ReasonNone, the reason of an accepted token.
type Reason uint8

// The reasons. ReasonNone is the reason of an accepted token.
const (
	ReasonNone               Reason = iota // token accepted
	ReasonMissing                          // no token was sent
	ReasonMalformed                        // the token is empty or not visible ASCII, or verify returned ErrMalformed
	ReasonExpired                          // verify returned ErrExpired
	ReasonInvalid                          // verify returned ErrInvalid or an unrecognized error
	ReasonUnsupportedVersion               // verify returned ErrUnsupportedVersion
	ReasonOversized                        // the token exceeds the maximum size; verify never saw it
	ReasonPanic                            // verify panicked
	// ReasonCanceled: verify failed after the request's context was
	// canceled (the client went away), whatever its error. A context that
	// ends by a deadline is not a disconnect; verify's error classifies it.
	ReasonCanceled
	numReasons
)

var reasonNames = [numReasons]string{"", "missing", "malformed", "expired", "invalid", "unsupported_version", "oversized", "panic", "canceled"}

// String returns the reason as used in metrics and logs: "missing",
// "malformed", "expired", "invalid", "unsupported_version", "oversized",
// "panic", "canceled", or "" for ReasonNone.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Outcome is what Auth did with a request. The zero value is OutcomeOK.
type Outcome uint8

// The outcomes.
const (
	// OutcomeOK: the token was verified and the principal stored.
	OutcomeOK Outcome = iota
	// OutcomeAnonymous: no valid token; the request continued as anonymous.
	OutcomeAnonymous
	// OutcomeRejected: no valid token; Auth answered 401 (WithRequired).
	OutcomeRejected
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "anonymous", "rejected"}

// String returns "ok", "anonymous" or "rejected".
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// AuthResult is what Auth decided for one request. Read it with
// AuthResultFrom, or receive it in the WithObserver hook. The zero value is
// an accepted token; AuthResultFrom's second result tells a request that no
// Auth saw.
type AuthResult struct {
	Outcome Outcome
	Reason  Reason
	// Err is the error verify returned (a *PanicError if it panicked), or
	// nil when the token was accepted or never reached verify.
	Err error
}

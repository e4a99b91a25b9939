package compat

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

var (
	// ErrInvalidConfig is wrapped by the error New returns for an invalid
	// version or option, and by the value JSONField and Then panic with
	// for an invalid argument.
	ErrInvalidConfig = errors.New("compat: invalid config")
	// ErrTooLarge is matched by the error Decode returns when the input is
	// longer than the size cap (see WithMaxSize); no version ran.
	ErrTooLarge = errors.New("compat: too large")
	// ErrUnrecognized is matched by the error Decode returns when no version
	// accepted the input.
	ErrUnrecognized = errors.New("compat: unrecognized")
	// ErrSunset is the error of an attempt whose version decoded the input
	// but is past its sunset, on a decoder built WithRejectAfterSunset. The
	// *Error that Decode returns then matches both ErrSunset and
	// ErrUnrecognized.
	ErrSunset = errors.New("compat: version past sunset")
	// ErrPanic is matched by a *PanicError: an attempt whose version's Match
	// or Decode panicked. The *Error that Decode returns then matches both
	// ErrPanic and ErrUnrecognized.
	ErrPanic = errors.New("compat: version panicked")
)

// PanicError is the error of an attempt whose version's Match or Decode
// panicked. Decode recovers the panic, counts and logs it, and tries the next
// candidate. It matches ErrPanic, and unwraps to the panic value if that is
// an error (a runtime.Error, for example). Decode fills in its fields; the
// zero value names no version.
type PanicError struct {
	// Version is the version's name.
	Version string
	// Func is "Match" or "Decode": the func that panicked.
	Func string
	// Value is the value the func panicked with.
	Value any
}

// Error describes the panic.
func (e *PanicError) Error() string { return fmt.Sprintf("compat: %s panicked: %v", e.Func, e.Value) }

// Is reports whether target is ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value if it is an error, otherwise nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Attempt is one version tried by Decode, and the error it failed with. The
// zero value names no version.
type Attempt struct {
	// Version is the version's name.
	Version string
	// Err is the error its Decode returned, ErrSunset if it decoded the
	// input but was refused because it is past its sunset, or a *PanicError
	// if its Match or Decode panicked.
	Err error
}

// Error is the error Decode returns. It matches ErrTooLarge when the input
// was over the size cap, and ErrUnrecognized otherwise. Through Unwrap it
// also matches each attempt's error (for example a verifier's "expired"
// sentinel, ErrSunset, or ErrPanic) and, if ctx was done between attempts,
// ctx.Err(). Decode fills in its fields; the zero value is an unrecognized
// input with no attempts.
type Error struct {
	// Decoder is the decoder's name (see WithName).
	Decoder string
	// Size is the length of the input in bytes.
	Size int
	// Limit is the size cap; it is set only when the input was too large.
	Limit int
	// Attempts lists, in order, every version that was tried or whose Match
	// panicked. It is empty when the input was too large or no version could
	// be tried.
	Attempts []Attempt
	// Cause is ctx.Err() if ctx was done between attempts, otherwise nil.
	Cause error

	tooLarge bool
}

// Error describes the failure and every attempt.
func (e *Error) Error() string {
	var b strings.Builder
	if e.tooLarge {
		b.WriteString("compat: too large: ")
		b.WriteString(strconv.Itoa(e.Size))
		b.WriteString(" bytes, limit ")
		b.WriteString(strconv.Itoa(e.Limit))
		b.WriteString(" (decoder ")
		b.WriteString(e.Decoder)
		b.WriteString(")")
		return b.String()
	}
	b.WriteString("compat: unrecognized (decoder ")
	b.WriteString(e.Decoder)
	b.WriteString(")")
	if len(e.Attempts) == 0 {
		b.WriteString(": no version matched")
	}
	for i, a := range e.Attempts {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(a.Version)
		b.WriteString(": ")
		if a.Err != nil {
			b.WriteString(a.Err.Error())
		} else {
			b.WriteString("<nil>")
		}
	}
	if e.Cause != nil {
		b.WriteString("; stopped: ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Is reports whether target is ErrTooLarge (for an input over the cap) or
// ErrUnrecognized (for any other failure).
func (e *Error) Is(target error) bool {
	if e.tooLarge {
		return target == ErrTooLarge
	}
	return target == ErrUnrecognized
}

// Unwrap returns the attempts' errors and Cause, so errors.Is and errors.As
// see through to them.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, len(e.Attempts)+1)
	for _, a := range e.Attempts {
		if a.Err != nil {
			errs = append(errs, a.Err)
		}
	}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}

// Package compat decodes every version of a format that is still in
// circulation into today's type, and counts which version it saw, so a
// team knows when it can retire a parser.
//
// A [Decoder] holds an ordered list of versions. Each decodes straight into
// the current ("hub") type T, or into its own type upgraded step by step
// with [Then]:
//
//	dec, err := compat.New([]compat.Version[Claims]{
//		{Name: "v3", Match: compat.Prefix("v3."), Decode: parseV3},
//		{Name: "v2", Match: compat.Prefix("v2."), Decode: compat.Then(parseV2, v2ToV3)},
//		{Name: "v1", Decode: compat.Then(compat.Then(parseV1, v1ToV2), v2ToV3), Sunset: retireV1},
//	}, compat.WithName("tokens"))
//
// Versions whose Match claims the input are tried first, then those without
// one; the first Decode that succeeds wins. [Decoder.Stats] and the
// blastradius.compat.decodes metric count every version's decodes. A
// version past its Sunset is still accepted and logged, or refused with
// [WithRejectAfterSunset]. [Decoder.Verify] has the signature edge.Auth
// takes, so edge.Auth(dec.Verify) accepts every token generation at the
// edge (incident I1).
//
// A panic in a version's Match or Decode fails that attempt with a
// [PanicError], is counted and logged, and the next version is tried. Logs
// go through a log budget (see [WithLogger]). An invalid version or option
// fails New with [ErrInvalidConfig].
//
// Match and Decode must not modify their input, nor retain it after they
// return: callers of Decode may reuse their buffers. Verify hands them a
// copy of the token.
//
// [OneOrMany] is a JSON value that accepts a single T or an array of T and
// records which shape it saw, for a field that changed from an array to an
// object (incident I3).
//
// # Details
//
// Input over the cap ([WithMaxSize], default 64 KiB) fails with
// [ErrTooLarge] before any Match or Decode runs. A version whose Match
// rejected the input is never tried. [Result].Fallback is true when the
// winner has no Match or an earlier candidate failed. When nothing accepts
// the input, Decode returns an [*Error] that matches [ErrUnrecognized],
// lists each attempt, and unwraps to each attempt's own error, so a
// verifier's "expired" sentinel still reaches edge.
//
// [Decoder.Stats] shows per-version counts and, for versions with a Sunset,
// when the last one was seen: that tells you when you can delete the
// parser. Verify copies the token first (one allocation), so a version that
// writes into its input never touches the request's header memory.
//
// Logs (past sunset, panics) go through the logger's log budget if its
// handler is a *logbudget.Handler, otherwise one of its own (10 per message
// and version a minute); records carry reason=<decoder>/<version>. A nil
// logger, clock or meter provider means the default; an invalid version or
// option fails New with an error naming it, such as
// "compat: invalid config: WithMaxSize(0): must be positive".
package compat

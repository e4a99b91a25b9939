// Package compat parses every version of a format that is still in
// circulation into today's type, and says which version it saw, so a team
// knows when it can retire a parser.
//
// It answers two incidents. In I1, an auth "cleanup" made tokens minted by
// the previous auth version fail to parse; every logged-in request failed. A
// [Decoder] registered with each token generation keeps all of them
// decoding, counts them per version, and can refuse a version once its
// [Version.Sunset] has passed. In I3, an API field changed from an array to
// an object and a consumer that was missed broke; [OneOrMany] accepts both
// shapes and records which one it saw.
//
// A Decoder holds an ordered list of versions. Each version decodes straight
// into the current ("hub") type T, or decodes its own type and is upgraded
// step by step with [Then]:
//
//	dec, err := compat.New([]compat.Version[Claims]{
//		{Name: "v3", Match: compat.Prefix("v3."), Decode: parseV3},
//		{Name: "v2", Match: compat.Prefix("v2."), Decode: compat.Then(parseV2, v2ToV3)},
//		{Name: "v1", Decode: compat.Then(compat.Then(parseV1, v1ToV2), v2ToV3), Sunset: retireV1},
//	}, compat.WithName("tokens"))
//
// A Decoder's Verify method has the signature edge.Auth expects, so
// edge.Auth(dec.Verify) is all it takes to accept every token generation at
// the edge.
//
// A panic in a version's Match or Decode (or an upgrade step) is recovered
// into that attempt's [PanicError], which matches [ErrPanic]; it is counted
// and logged within the log budget, and the next version is tried. A parser
// that panics on one odd input fails that input, not the caller.
//
// Decode, Match and upgrade functions must not modify their input and must
// not retain it, or any sub-slice of it, after they return: callers of
// Decode may reuse their buffers. Verify copies the token first, so that a
// version that breaks this rule can never write into the request's memory.
package compat

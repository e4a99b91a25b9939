package compat

// Then composes a decoder for an older type A with an upgrade step from A to
// B, giving a decoder for B. Chain it to build hub-and-spoke parsers: each
// old format is decoded into its own type once, and upgraded step by step to
// the current one, so adding v4 needs one new step, not one per old version:
//
//	v1 := compat.Then(compat.Then(parseV1, v1ToV2), v2ToV3) // []byte → V3
//
// The composed func returns decode's error, or upgrade's, unchanged. Then
// panics with an error wrapping ErrInvalidConfig if decode or upgrade is
// nil.
func Then[A, B any](decode func([]byte) (A, error), upgrade func(A) (B, error)) func([]byte) (B, error) {
	switch {
	case decode == nil:
		panic(invalid("Then(nil, upgrade): nil decode"))
	case upgrade == nil:
		panic(invalid("Then(decode, nil): nil upgrade"))
	}
	return func(data []byte) (B, error) {
		a, err := decode(data)
		if err != nil {
			var zero B
			return zero, err
		}
		return upgrade(a)
	}
}

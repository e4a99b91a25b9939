package compat_test

import (
	"errors"
	"math"
	"testing"

	"github.com/blastradius/blastradius/compat"
)

func TestPrefix(t *testing.T) {
	tests := []struct {
		prefix, in string
		want       bool
	}{
		{"v2.", "v2.abc", true},
		{"v2.", "v2.", true},
		{"v2.", "v2", false},
		{"v2.", "v3.abc", false},
		{"v2.", "", false},
		{"", "", true},
		{"", "anything", true},
	}
	for _, tt := range tests {
		if got := compat.Prefix(tt.prefix)([]byte(tt.in)); got != tt.want {
			t.Errorf("Prefix(%q)(%q) = %v, want %v", tt.prefix, tt.in, got, tt.want)
		}
	}
}

// jsonFieldDocs also seed FuzzJSONField.
var jsonFieldDocs = []string{
	`{"version":"2","items":[]}`,
	`{"items":[{"version":"1"},[1,2,{"a":[]}]],"version":"2"}`,
	` {"a":{"version":"2"},"version":2}`,
	`{"version":2.0}`,
	`{"version":2e0}`,
	`{"version":-7}`,
	`{"version":18446744073709551615}`,
	`{"version":1.5}`,
	`{"version":true}`,
	`{"version":null}`,
	`{"version":["2"]}`,
	`{"version":"\u0032"}`,
	`{"Version":"2"}`,
	`{"version":"1","version":"2"}`,
	`["version","2"]`,
	`"version"`,
	`{"version"`,
	`{"version":`,
	`{"a":[1,2,}`,
	`{"a":{"b":1}`,
	`{"a":1 "version":"2"}`,
	`{"version":"2"} trailing garbage`,
	`{"version":"2",`,
	`{}`,
	``,
	`{"items":[[[[[[[[[[[]]]]]]]]]]],"version":"2"}`,
}

func TestJSONField(t *testing.T) {
	str2 := compat.JSONField("version", "2")
	int2 := compat.JSONField("version", 2)
	uintMax := compat.JSONField("version", uint64(18446744073709551615))
	neg := compat.JSONField("version", int8(-7))
	half := compat.JSONField("version", 1.5)
	yes := compat.JSONField("version", true)
	half32 := compat.JSONField("version", float32(1.5))
	tenth32 := compat.JSONField("version", float32(0.1))
	type myString string
	named := compat.JSONField("version", myString("2"))

	tests := []struct {
		doc   string
		match func([]byte) bool
		want  bool
	}{
		{jsonFieldDocs[0], str2, true},
		{jsonFieldDocs[0], named, true},
		{jsonFieldDocs[0], int2, false}, // a string is not a number
		{jsonFieldDocs[1], str2, true},  // nested members are skipped
		{jsonFieldDocs[2], str2, false}, // only top-level members count
		{jsonFieldDocs[2], int2, true},
		{jsonFieldDocs[3], int2, true},
		{jsonFieldDocs[4], int2, true},
		{jsonFieldDocs[3], str2, false},
		{jsonFieldDocs[5], neg, true},
		{jsonFieldDocs[6], uintMax, true},
		{jsonFieldDocs[6], int2, false},
		{jsonFieldDocs[7], half, true},
		{jsonFieldDocs[7], int2, false},
		{jsonFieldDocs[7], half32, true},
		{`{"version":0.1}`, tenth32, true},
		{jsonFieldDocs[8], yes, true},
		{jsonFieldDocs[8], str2, false},
		{jsonFieldDocs[9], str2, false},
		{jsonFieldDocs[10], str2, false},
		{jsonFieldDocs[11], str2, true},  // compared after unescaping
		{jsonFieldDocs[12], str2, false}, // names are case-sensitive
		{jsonFieldDocs[13], str2, false}, // the first member decides
		{jsonFieldDocs[14], str2, false},
		{jsonFieldDocs[15], str2, false},
		{jsonFieldDocs[16], str2, false},
		{jsonFieldDocs[17], str2, false},
		{jsonFieldDocs[18], str2, false},
		{jsonFieldDocs[19], str2, false},
		{jsonFieldDocs[20], str2, false},
		{jsonFieldDocs[21], str2, true}, // stops at the member: the tail is Decode's business
		{jsonFieldDocs[22], str2, true},
		{jsonFieldDocs[23], str2, false},
		{jsonFieldDocs[24], str2, false},
		{jsonFieldDocs[25], str2, true},
	}
	for _, tt := range tests {
		if got := tt.match([]byte(tt.doc)); got != tt.want {
			t.Errorf("match(%s) = %v, want %v", tt.doc, got, tt.want)
		}
	}
}

// TestJSONFieldNumbers checks that integers are compared with the exact
// value of the JSON literal, never through a float64, and that floats are
// rounded once, in the float's own type.
func TestJSONFieldNumbers(t *testing.T) {
	const maxU = uint64(18446744073709551615)
	tests := []struct {
		name  string
		match func([]byte) bool
		lit   string
		want  bool
	}{
		// Integral literals in every spelling equal the integer.
		{"2", compat.JSONField("v", 2), `2`, true},
		{"2", compat.JSONField("v", 2), `2.0`, true},
		{"2", compat.JSONField("v", 2), `2e0`, true},
		{"2", compat.JSONField("v", 2), `2E+0`, true},
		{"2", compat.JSONField("v", 2), `20e-1`, true},
		{"2", compat.JSONField("v", 2), `0.2e1`, true},
		{"2", compat.JSONField("v", 2), `0.00000000000000000000000000002e29`, true},
		{"2", compat.JSONField("v", 2), `2.000000000000000000000000000000`, true},
		{"2", compat.JSONField("v", 2), `200000000000000000000000000000e-29`, true},
		{"1e16", compat.JSONField("v", int64(1e16)), `1e16`, true},
		{"1e16", compat.JSONField("v", int64(1e16)), `10000000000000000`, true},
		{"1e16", compat.JSONField("v", int64(1e16)), `1.0e16`, true},
		{"1e18", compat.JSONField("v", int64(1e18)), `1e18`, true},
		{"1e19", compat.JSONField("v", uint64(1e19)), `1e19`, true},
		// Literals that a float64 rounds to the integer do not equal it.
		{"2", compat.JSONField("v", 2), `2.0000000000000001`, false},
		{"2", compat.JSONField("v", 2), `1.9999999999999999`, false},
		{"2", compat.JSONField("v", 2), `20000000000000001e-16`, false},
		{"0", compat.JSONField("v", 0), `1e-400`, false},
		{"0", compat.JSONField("v", 0), `-1e-400`, false},
		{"2^53", compat.JSONField("v", int64(1<<53)), `9007199254740993.0`, false},
		{"2^53", compat.JSONField("v", int64(1<<53)), `9007199254740993`, false},
		{"2^53", compat.JSONField("v", int64(1<<53)), `9007199254740992.0`, true},
		{"2^53+1", compat.JSONField("v", int64(1<<53+1)), `9007199254740993.0`, true},
		{"2^53+1", compat.JSONField("v", int64(1<<53+1)), `9.007199254740993e15`, true},
		{"2^53+1", compat.JSONField("v", int64(1<<53+1)), `9007199254740992`, false},
		// Zero, signs and the ends of the ranges.
		{"0", compat.JSONField("v", 0), `0`, true},
		{"0", compat.JSONField("v", 0), `-0`, true},
		{"0", compat.JSONField("v", 0), `-0.0e-7`, true},
		{"0", compat.JSONField("v", 0), `0e999999999999999999999`, true},
		{"0", compat.JSONField("v", uint(0)), `-0`, true},
		{"-7", compat.JSONField("v", int8(-7)), `-7.0`, true},
		{"-7", compat.JSONField("v", int8(-7)), `7`, false},
		{"7", compat.JSONField("v", uint8(7)), `-7`, false},
		{"minInt64", compat.JSONField("v", int64(-1<<63)), `-9223372036854775808`, true},
		{"minInt64", compat.JSONField("v", int64(-1<<63)), `-9.223372036854775808e18`, true},
		{"minInt64", compat.JSONField("v", int64(-1<<63)), `-9223372036854775809`, false},
		{"maxInt64", compat.JSONField("v", int64(1<<63-1)), `9223372036854775807`, true},
		{"maxInt64", compat.JSONField("v", int64(1<<63-1)), `9223372036854775808`, false},
		{"maxInt64", compat.JSONField("v", int64(1<<63-1)), `9.223372036854775807e18`, true},
		{"maxUint64", compat.JSONField("v", maxU), `18446744073709551615`, true},
		{"maxUint64", compat.JSONField("v", maxU), `1.8446744073709551615e19`, true},
		{"maxUint64", compat.JSONField("v", maxU), `18446744073709551616`, false},
		{"maxUint64", compat.JSONField("v", maxU), `1.8446744073709551616e19`, false},
		{"maxUint64", compat.JSONField("v", maxU), `1.8446744073709551615e20`, false},
		{"maxUint64", compat.JSONField("v", maxU), `-18446744073709551615`, false},
		{"1", compat.JSONField("v", 1), `1e999999999999999999999`, false},
		{"1", compat.JSONField("v", 1), `1e-999999999999999999999`, false},
		{"1", compat.JSONField("v", 1), `10e-1`, true},
		{"1", compat.JSONField("v", 1), `1.5`, false},
		{"1", compat.JSONField("v", 1), `0.1e1`, true},
		{"1", compat.JSONField("v", 1), `0.01e1`, false},
		// Floats round once, in their own type: this literal lies just above
		// the midpoint between float32(1) and the next float32, and exactly
		// on it after rounding to a float64 first.
		{"f32 next", compat.JSONField("v", float32(1+1.0/(1<<23))), `1.000000059604644775390625000001`, true},
		{"f32 one", compat.JSONField("v", float32(1)), `1.000000059604644775390625000001`, false},
		{"f64 0", compat.JSONField("v", 0.0), `1e-400`, true}, // rounds to 0
		{"f64 2", compat.JSONField("v", 2.0), `2.0000000000000001`, true},
		{"f64 max", compat.JSONField("v", 1.7976931348623157e308), `1e400`, false},
	}
	for _, tt := range tests {
		doc := `{"v":` + tt.lit + `}`
		if got := tt.match([]byte(doc)); got != tt.want {
			t.Errorf("JSONField(v, %s)(%s) = %v, want %v", tt.name, doc, got, tt.want)
		}
	}
}

// TestJSONFieldNumberAllocs checks that comparing a number allocates
// nothing: an integer or float matcher costs what a string matcher (which
// rejects a number at once) costs on the same document, which is the
// tokenizer's own allocations. (A float literal out of float range, such as
// 1e400, costs strconv's error.)
func TestJSONFieldNumberAllocs(t *testing.T) {
	other := compat.JSONField("version", "2")
	for _, doc := range []string{`{"id":"a1","version":2}`, `{"id":"a1","version":2.0}`, `{"id":"a1","version":20e-1}`,
		`{"id":"a1","version":18446744073709551615}`, `{"id":"a1","version":-0.0e-7}`} {
		b := []byte(doc)
		base := testing.AllocsPerRun(100, func() { other(b) })
		for _, m := range []func([]byte) bool{compat.JSONField("version", 2), compat.JSONField("version", uint8(2)),
			compat.JSONField("version", 2.0), compat.JSONField("version", float32(2))} {
			if got := testing.AllocsPerRun(100, func() { m(b) }); got != base {
				t.Errorf("%s: %v allocs, want %v (the tokenizer's)", doc, got, base)
			}
		}
	}
}

// TestConstructorsPanicOnInvalidConfig checks that the constructors
// without an error result, JSONField and Then, refuse an invalid argument
// when the func is built, with a panic whose value wraps ErrInvalidConfig
// and names the function and the value: a JSONField value no JSON number
// can equal would otherwise silently never match, and a nil step would
// fail only later.
func TestConstructorsPanicOnInvalidConfig(t *testing.T) {
	parse := func(b []byte) (int, error) { return len(b), nil }
	double := func(n int) (int, error) { return 2 * n, nil }
	for _, tt := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"NaN", func() { compat.JSONField("v", math.NaN()) }, `JSONField("v", NaN): not a finite number`},
		{"+Inf", func() { compat.JSONField("v", math.Inf(1)) }, `JSONField("v", +Inf): not a finite number`},
		{"-Inf", func() { compat.JSONField("v", math.Inf(-1)) }, `JSONField("v", -Inf): not a finite number`},
		{"float32 NaN", func() { compat.JSONField("w", float32(math.NaN())) }, `JSONField("w", NaN): not a finite number`},
		{"float32 +Inf", func() { compat.JSONField("w", float32(math.Inf(1))) }, `JSONField("w", +Inf): not a finite number`},
		{"Then nil decode", func() { compat.Then(nil, double) }, "Then(nil, upgrade): nil decode"},
		{"Then nil upgrade", func() { compat.Then[int, int](parse, nil) }, "Then(decode, nil): nil upgrade"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				err, _ := recover().(error)
				if want := "compat: invalid config: " + tt.msg; !errors.Is(err, compat.ErrInvalidConfig) || err.Error() != want {
					t.Errorf("panic %v, want an error %q", err, want)
				}
			}()
			tt.f()
		})
	}
	if !compat.JSONField("v", math.MaxFloat64)([]byte(`{"v":1.7976931348623157e308}`)) {
		t.Error("MaxFloat64 does not match itself")
	}
}

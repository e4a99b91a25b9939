package compat

import (
	"bytes"
	"encoding/json"
	"math"
	"math/bits"
	"reflect"
	"strconv"
)

// Prefix returns a Match func that reports whether data starts with p.
func Prefix(p string) func(data []byte) bool {
	return func(data []byte) bool {
		return len(data) >= len(p) && string(data[:len(p)]) == p
	}
}

// Scalar is the set of Go types JSONField compares a member's value with: a
// type constraint, with no values of its own.
type Scalar interface {
	~string | ~bool |
		~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 |
		~float32 | ~float64
}

// JSONField returns a Match func that reports whether data is a JSON object
// whose top-level member name (compared exactly, case-sensitively) has the
// scalar value value:
//
//   - a string value matches a JSON string with the same content after
//     unescaping;
//   - a bool value matches true or false;
//   - an integer value matches a JSON number whose exact value is that
//     integer, however it is spelled (2, 2.0, 2e0 and 20e-1 all match 2,
//     1e16 matches 10000000000000000), and nothing else: 2.0000000000000001
//     does not match 2, nor 1e-400 match 0, although a float64 rounds them
//     to it. The literal is compared digit by digit, never through a float;
//   - a float value matches a JSON number that rounds to the same value in
//     the float's own type (a float32 is rounded once, to float32), so
//     1e-400 matches 0.0.
//
// The first member with that name decides. A value of another JSON type
// (including null, objects and arrays) never matches.
//
// It streams the document with encoding/json's Decoder.Token and stops as
// soon as it has read the member, skipping the values of the members before
// it; it does not validate the rest of the document (Decode will). The
// returned func never panics, and returns false for anything that is not a
// JSON object.
//
// JSONField panics with an error wrapping ErrInvalidConfig if value is a
// NaN or an infinity: no JSON number equals it, so such a matcher could only
// ever fail, silently.
func JSONField[V Scalar](name string, value V) func(data []byte) bool {
	want := scalarOf(value)
	if (want.kind == reflect.Float32 || want.kind == reflect.Float64) && (math.IsNaN(want.f) || math.IsInf(want.f, 0)) {
		panic(invalid("JSONField(%q, %v): not a finite number", name, value))
	}
	return func(data []byte) bool {
		return matchField(data, name, want)
	}
}

type scalar struct {
	kind reflect.Kind // String, Bool, Int64, Uint64, Float32 or Float64
	s    string
	b    bool
	i    int64
	u    uint64
	f    float64
}

func scalarOf[V Scalar](value V) scalar {
	rv := reflect.ValueOf(value)
	switch rv.Kind() {
	case reflect.String:
		return scalar{kind: reflect.String, s: rv.String()}
	case reflect.Bool:
		return scalar{kind: reflect.Bool, b: rv.Bool()}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar{kind: reflect.Int64, i: rv.Int()}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar{kind: reflect.Uint64, u: rv.Uint()}
	case reflect.Float32:
		return scalar{kind: reflect.Float32, f: rv.Float()}
	default: // Float64
		return scalar{kind: reflect.Float64, f: rv.Float()}
	}
}

func (w scalar) equal(tok json.Token) bool {
	switch t := tok.(type) {
	case string:
		return w.kind == reflect.String && t == w.s
	case bool:
		return w.kind == reflect.Bool && t == w.b
	case json.Number:
		switch w.kind {
		case reflect.Int64:
			mag, neg, ok := exactInteger(string(t))
			if !ok {
				return false
			}
			if w.i < 0 {
				return neg && mag == -uint64(w.i) // -uint64 is exact for every int64
			}
			return !neg && mag == uint64(w.i)
		case reflect.Uint64:
			mag, neg, ok := exactInteger(string(t))
			return ok && !neg && mag == w.u
		case reflect.Float32:
			f, err := strconv.ParseFloat(string(t), 32) // rounded once, to float32
			return err == nil && float32(f) == float32(w.f)
		case reflect.Float64:
			f, err := strconv.ParseFloat(string(t), 64)
			return err == nil && f == w.f
		}
	}
	return false
}

// exactInteger returns the exact value of the JSON number literal s as a
// sign and a magnitude, if it is an integer whose magnitude fits in a
// uint64; ok is false otherwise (a fraction, a magnitude of 2⁶⁴ or more, or
// not a JSON number). Zero, however spelled, is not negative. It works on
// the literal's digits and exponent, never through a float, and allocates
// nothing.
func exactInteger(s string) (mag uint64, neg, ok bool) {
	if s != "" && s[0] == '-' {
		neg, s = true, s[1:]
	}
	// s is int[.frac][(e|E)[+|-]exp]; its value is digits(int frac) ×
	// 10^(exp − len(frac)).
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart, frac := s[:i], ""
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		frac, i = s[i+1:j], j
	}
	if intPart == "" {
		return 0, false, false
	}
	var exp int64 // saturates at ±maxExp: beyond it only zero is an integer in range
	const maxExp = 1 << 40
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg, i = s[i] == '-', i+1
		}
		if i == len(s) {
			return 0, false, false
		}
		for ; i < len(s) && isDigit(s[i]); i++ {
			exp = min(exp*10+int64(s[i]-'0'), maxExp)
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(s) {
		return 0, false, false
	}

	// The digits of int and frac as one sequence: trim its zeros at both
	// ends, moving the exponent for the trailing ones.
	n := len(intPart) + len(frac)
	digit := func(k int) byte {
		if k < len(intPart) {
			return intPart[k] - '0'
		}
		return frac[k-len(intPart)] - '0'
	}
	first, last := 0, n-1
	for first < n && digit(first) == 0 {
		first++
	}
	if first == n {
		return 0, false, true // zero, and -0 is zero
	}
	for digit(last) == 0 {
		last--
	}
	exp += int64(n-1-last) - int64(len(frac))
	nd := int64(last - first + 1)
	// A fraction remains, or the value has more than 20 digits (2⁶⁴−1 has 20).
	if exp < 0 || nd+exp > 20 {
		return 0, false, false
	}
	for k := first; k <= last; k++ {
		hi, lo := bits.Mul64(mag, 10)
		sum, carry := bits.Add64(lo, uint64(digit(k)), 0)
		if hi != 0 || carry != 0 {
			return 0, false, false
		}
		mag = sum
	}
	for ; exp > 0; exp-- {
		hi, lo := bits.Mul64(mag, 10)
		if hi != 0 {
			return 0, false, false
		}
		mag = lo
	}
	return mag, neg, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func matchField(data []byte, name string, want scalar) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return false
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return false
		}
		k, ok := key.(string)
		if !ok {
			return false
		}
		if k == name {
			val, err := dec.Token()
			if err != nil {
				return false
			}
			return want.equal(val)
		}
		if !skipValue(dec) {
			return false
		}
	}
	return false
}

// skipValue consumes one value, nested or not, and reports whether it was
// well formed as far as the tokenizer can tell.
func skipValue(dec *json.Decoder) bool {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth <= 0 {
			return true
		}
	}
}

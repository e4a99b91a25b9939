package compat

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
)

// Prefix returns a Match func that reports whether data starts with p.
func Prefix(p string) func(data []byte) bool {
	return func(data []byte) bool {
		return len(data) >= len(p) && string(data[:len(p)]) == p
	}
}

// Scalar is the set of Go types JSONField compares a member's value with.
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
//   - an integer value matches a JSON number that is an integer with the
//     same value (2, 2.0 and 2e0 all match 2); a float value matches a JSON
//     number that rounds to the same value in the float's own type.
//
// The first member with that name decides. A value of another JSON type
// (including null, objects and arrays) never matches.
//
// It streams the document with encoding/json's Decoder.Token and stops as
// soon as it has read the member, skipping the values of the members before
// it; it does not validate the rest of the document (Decode will). It never
// panics, and returns false for anything that is not a JSON object.
func JSONField[V Scalar](name string, value V) func(data []byte) bool {
	want := scalarOf(value)
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
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return false
		}
		switch w.kind {
		case reflect.Int64:
			if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
				return i == w.i
			}
			// 2.0 or 2e0: integral floats within the exactly representable range.
			return f == math.Trunc(f) && math.Abs(f) <= 1<<53 && int64(f) == w.i
		case reflect.Uint64:
			if u, err := strconv.ParseUint(string(t), 10, 64); err == nil {
				return u == w.u
			}
			return f == math.Trunc(f) && f >= 0 && f <= 1<<53 && uint64(f) == w.u
		case reflect.Float32:
			return float32(f) == float32(w.f)
		case reflect.Float64:
			return f == w.f
		}
	}
	return false
}

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

package compat

import (
	"bytes"
	"encoding/json"
)

// Shape is the JSON shape a OneOrMany was decoded from. The zero Shape is
// Unset.
type Shape uint8

// The shapes a OneOrMany can record.
const (
	// Unset is the zero Shape: nothing was decoded (for example, the member
	// was absent).
	Unset Shape = iota
	// Null means the value was JSON null; Items is nil.
	Null
	// One means the value was a single non-array value; Items has one
	// element.
	One
	// Many means the value was an array; Items has its elements (an empty,
	// non-nil slice for []).
	Many
)

// String returns "unset", "null", "one" or "many".
func (s Shape) String() string {
	switch s {
	case Null:
		return "null"
	case One:
		return "one"
	case Many:
		return "many"
	default:
		return "unset"
	}
}

// OneOrMany is a tolerant JSON value that accepts either a single T or an
// array of T, and records which shape it saw, so that a field changing from
// an array to an object (or back) keeps decoding, and can be counted (I3).
//
// T must not itself be decoded from a JSON array (a slice or array type):
// an array is always read as Many. The zero value holds no items, with
// Shape Unset, ready to decode into.
type OneOrMany[T any] struct {
	// Items holds the decoded value or values.
	Items []T
	// Shape is the shape that was decoded.
	Shape Shape
}

// UnmarshalJSON decodes a single value, an array, or null. On error the
// OneOrMany is left unchanged.
func (o *OneOrMany[T]) UnmarshalJSON(data []byte) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		var items []T
		if err := json.Unmarshal(data, &items); err != nil {
			return err
		}
		if items == nil {
			items = []T{}
		}
		o.Items, o.Shape = items, Many
	case bytes.Equal(bytes.TrimRight(trimmed, " \t\r\n"), []byte("null")):
		o.Items, o.Shape = nil, Null
	default:
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		o.Items, o.Shape = []T{v}, One
	}
	return nil
}

// MarshalJSON writes the shape that was decoded: a single value for One
// (when Items has exactly one element), null for Null (when Items is
// empty), and otherwise an array ([] for no items).
func (o OneOrMany[T]) MarshalJSON() ([]byte, error) {
	switch {
	case o.Shape == One && len(o.Items) == 1:
		return json.Marshal(o.Items[0])
	case o.Shape == Null && len(o.Items) == 0:
		return []byte("null"), nil
	case o.Items == nil:
		return []byte("[]"), nil
	default:
		return json.Marshal(o.Items)
	}
}

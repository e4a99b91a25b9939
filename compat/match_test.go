package compat_test

import (
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

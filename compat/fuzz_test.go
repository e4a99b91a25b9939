package compat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/compat"
	"github.com/blastradius/blastradius/internal/fakeclock"
)

// FuzzDecode feeds arbitrary input to a decoder with the three token
// generations registered. It never panics, no Match or Decode ever sees more
// than the cap, input over the cap reaches none of them, and every failure
// is typed.
func FuzzDecode(f *testing.F) {
	const limit = 512
	clk := fakeclock.New()
	kit := newTokenKit(clk.Now)
	exp := t0.Add(time.Hour)
	for _, c := range i1Cases(kit, wrongKeys(clk.Now), exp) {
		if len(c.token) <= 2*limit {
			f.Add([]byte(c.token))
		}
	}
	f.Add(bytes.Repeat([]byte("a"), limit+1))
	f.Add([]byte("v3." + kit.mintV3("k1", "x", exp)))

	var calls, maxSeen int
	guard := func(vs []compat.Version[Claims]) []compat.Version[Claims] {
		for i := range vs {
			v := vs[i]
			if v.Match != nil {
				vs[i].Match = func(b []byte) bool {
					calls++
					maxSeen = max(maxSeen, len(b))
					return v.Match(b)
				}
			}
			vs[i].Decode = func(b []byte) (Claims, error) {
				calls++
				maxSeen = max(maxSeen, len(b))
				return v.Decode(b)
			}
		}
		return vs
	}
	dec, err := compat.New(guard(kit.versions(t0.Add(month))), compat.WithMaxSize(limit), compat.WithClock(clk.Now))
	if err != nil {
		f.Fatal(err)
	}
	typed := []error{errMalformed, errBadSignature, errUnknownKey, errExpired}

	f.Fuzz(func(t *testing.T, in []byte) {
		calls, maxSeen = 0, 0
		c, res, err := dec.Decode(context.Background(), in)
		if maxSeen > limit {
			t.Fatalf("a version saw %d bytes, cap %d", maxSeen, limit)
		}
		if len(in) > limit {
			if calls != 0 || !errors.Is(err, compat.ErrTooLarge) {
				t.Fatalf("%d bytes: %d calls, err %v", len(in), calls, err)
			}
			return
		}
		if err == nil {
			if c.Subject == "" || (res.Version != "v1" && res.Version != "v2" && res.Version != "v3") || res.Fallback != (res.Version == "v1") {
				t.Fatalf("Decode(%q) = %+v, %+v", in, c, res)
			}
		} else {
			var ce *compat.Error
			if !errors.As(err, &ce) || !errors.Is(err, compat.ErrUnrecognized) || res != (compat.Result{}) || c != (Claims{}) {
				t.Fatalf("Decode(%q) = %+v, %+v, %v", in, c, res, err)
			}
			for _, a := range ce.Attempts {
				ok := false
				for _, e := range typed {
					ok = ok || errors.Is(a.Err, e)
				}
				if !ok {
					t.Fatalf("Decode(%q): untyped attempt %+v", in, a)
				}
			}
		}
		vc, verr := dec.Verify(context.Background(), string(in))
		if vc != c || (verr == nil) != (err == nil) {
			t.Fatalf("Verify disagrees with Decode: %+v, %v vs %+v, %v", vc, verr, c, err)
		}
	})
}

// FuzzJSONField checks JSONField never panics and matches only objects.
func FuzzJSONField(f *testing.F) {
	for _, d := range jsonFieldDocs {
		f.Add([]byte(d), "version", "2")
	}
	f.Fuzz(func(t *testing.T, doc []byte, name, value string) {
		matched := compat.JSONField(name, value)(doc)
		_ = compat.JSONField(name, len(value))(doc)
		_ = compat.JSONField(name, -float64(len(value))/2)(doc)
		_ = compat.JSONField(name, uint8(len(value)))(doc)
		_ = compat.JSONField(name, len(value)%2 == 0)(doc)
		if matched && bytes.TrimLeft(doc, " \t\r\n")[0] != '{' {
			t.Fatalf("matched a non-object: %q", doc)
		}
		if matched && json.Valid(doc) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(doc, &m); err != nil {
				t.Fatalf("matched %q, which is not an object: %v", doc, err)
			}
			if _, ok := m[name]; !ok {
				t.Fatalf("matched %q, which has no member %q", doc, name)
			}
		}
	})
}

// FuzzJSONFieldInteger checks integer matching against the exact value of
// the number literal, as math/big reads it: JSONField(name, n) matches a
// number if and only if its value is exactly n.
func FuzzJSONFieldInteger(f *testing.F) {
	for _, lit := range []string{"2", "2.0", "20e-1", "2.0000000000000001", "1e-400", "-0", "1e16",
		"9007199254740993.0", "-9223372036854775808", "18446744073709551615", "1.8446744073709551616e19"} {
		f.Add(lit, int64(2))
	}
	f.Fuzz(func(t *testing.T, lit string, want int64) {
		doc := []byte(`{"v":` + lit + `}`)
		gotWant := compat.JSONField("v", want)(doc)
		gotU := compat.JSONField("v", uint64(want))(doc)
		lit = strings.Trim(lit, " \t\r\n") // JSON whitespace
		if !json.Valid([]byte(lit)) || lit == "" || (lit[0] != '-' && (lit[0] < '0' || lit[0] > '9')) {
			return // not a number: JSONField's other tests cover it
		}
		if i := strings.IndexAny(lit, "eE"); i >= 0 && len(lit)-i > 6 {
			return // exponents beyond ±9999 are too slow to expand exactly
		}
		r, ok := new(big.Rat).SetString(lit)
		if !ok {
			t.Fatalf("big.Rat cannot read %q", lit)
		}
		if gotWant != (r.Cmp(new(big.Rat).SetInt64(want)) == 0) {
			t.Fatalf("JSONField(v, %d)(%s) = %v, exact value %s", want, doc, gotWant, r.RatString())
		}
		if gotU != (r.Cmp(new(big.Rat).SetUint64(uint64(want))) == 0) {
			t.Fatalf("JSONField(v, uint64 %d)(%s) = %v, exact value %s", uint64(want), doc, gotU, r.RatString())
		}
		if r.IsInt() && r.Num().IsInt64() && !compat.JSONField("v", r.Num().Int64())(doc) {
			t.Fatalf("JSONField(v, %s)(%s) = false", r.Num(), doc)
		}
		if r.IsInt() && r.Num().IsUint64() && !compat.JSONField("v", r.Num().Uint64())(doc) {
			t.Fatalf("JSONField(v, uint64 %s)(%s) = false", r.Num(), doc)
		}
	})
}

// FuzzOneOrMany checks OneOrMany never panics, that its shape agrees with
// its items, and that Marshal writes back the shape it saw.
func FuzzOneOrMany(f *testing.F) {
	for _, d := range oneOrManyDocs {
		f.Add([]byte(d))
	}
	f.Add([]byte(`{"items":[{"id":1,"name":"feature-1"},{"id":-1,"name":"extra"}]}`))
	f.Add([]byte(`{"id":8,"name":"feature-8"}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`7`))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkOneOrMany[Item](t, in)
		checkOneOrMany[int](t, in)
		checkOneOrMany[string](t, in)
	})
}

func checkOneOrMany[T any](t *testing.T, in []byte) {
	var o compat.OneOrMany[T]
	if err := json.Unmarshal(in, &o); err != nil {
		return
	}
	switch {
	case o.Shape == compat.One && len(o.Items) == 1,
		o.Shape == compat.Many && o.Items != nil,
		o.Shape == compat.Null && o.Items == nil:
	default:
		t.Fatalf("Unmarshal(%q) = %+v: shape and items disagree", in, o)
	}
	out, err := json.Marshal(o)
	if err != nil {
		t.Fatalf("Marshal(%+v): %v", o, err)
	}
	var back compat.OneOrMany[T]
	if err := json.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(back, o) {
		t.Fatalf("round trip of %q via %s = %+v, %v; want %+v", in, out, back, err, o)
	}
}

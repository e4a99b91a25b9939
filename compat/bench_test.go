package compat_test

import (
	"context"
	"testing"
	"time"

	"github.com/blastradius/blastradius/compat"
)

// BenchmarkDecode compares Decoder.Decode with calling the matching
// version's Decode func directly, in the same run, for each token generation
// and for a trivial non-allocating format (which shows the absolute
// overhead). The decoder records to a real OpenTelemetry SDK meter provider.
// Compare with: benchstat -col /via.
func BenchmarkDecode(b *testing.B) {
	clk := newClock(t0)
	kit := newTokenKit(clk.Now)
	mp, _ := meter(b)
	vs := kit.versions(t0.Add(100 * month)) // v1 has a sunset, not yet reached
	tokens, err := compat.New(vs, compat.WithName("tokens"), compat.WithMeterProvider(mp), compat.WithClock(clk.Now))
	if err != nil {
		b.Fatal(err)
	}
	exp := t0.Add(time.Hour)

	tiny := []compat.Version[int]{
		{Name: "hex", Match: compat.Prefix("0x"), Decode: func([]byte) (int, error) { return 0, errNo }},
		{Name: "dec", Match: compat.Prefix("1"), Decode: digits},
	}
	tinyDec, err := compat.New(tiny, compat.WithName("tiny"), compat.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}

	type decodeFunc func([]byte) error
	cases := []struct {
		name   string
		in     []byte
		direct decodeFunc
		compat decodeFunc
	}{
		{"v3", []byte(kit.mintV3("k1", "carol", exp)), func(in []byte) error { _, err := vs[0].Decode(in); return err },
			func(in []byte) error { _, _, err := tokens.Decode(context.Background(), in); return err }},
		{"v2", []byte(kit.mintV2("bob", exp)), func(in []byte) error { _, err := vs[1].Decode(in); return err },
			func(in []byte) error { _, _, err := tokens.Decode(context.Background(), in); return err }},
		{"v1", []byte(kit.mintV1("alice", exp)), func(in []byte) error { _, err := vs[2].Decode(in); return err },
			func(in []byte) error { _, _, err := tokens.Decode(context.Background(), in); return err }},
		{"tiny", []byte("1234567"), func(in []byte) error { _, err := tiny[1].Decode(in); return err },
			func(in []byte) error { _, _, err := tinyDec.Decode(context.Background(), in); return err }},
	}
	for _, c := range cases {
		for _, via := range []struct {
			name string
			f    decodeFunc
		}{{"direct", c.direct}, {"compat", c.compat}} {
			if err := via.f(c.in); err != nil {
				b.Fatalf("%s %s: %v", c.name, via.name, err)
			}
			b.Run("token="+c.name+"/via="+via.name+"/mode=serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := via.f(c.in); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("token="+c.name+"/via="+via.name+"/mode=parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := via.f(c.in); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

package compat_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/blastradius/blastradius/compat"
	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/internal/metrictest"
)

// BenchmarkDecode compares Decoder.Decode with calling the matching
// version's Decode func directly, in the same run, for each token generation
// and for a trivial non-allocating format (which shows the absolute
// overhead); see benchCases. Compare with: benchstat -col /via.
func BenchmarkDecode(b *testing.B) {
	for _, c := range benchCases(b) {
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

// BenchmarkDecodePaired measures the same pairs as BenchmarkDecode, but
// alternates blocks of direct and compat calls within one loop and reports
// the medians of the per-block times, so that load from other processes on
// a shared machine hits both sides alike. It reports direct-ns/op,
// compat-ns/op, overhead-ns/op and the ratio compat/direct.
func BenchmarkDecodePaired(b *testing.B) {
	for _, c := range benchCases(b) {
		b.Run("token="+c.name, func(b *testing.B) {
			d, v := paired(b, func() { mustDecode(b, c.direct, c.in) }, func() { mustDecode(b, c.compat, c.in) })
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(d, "direct-ns/op")
			b.ReportMetric(v, "compat-ns/op")
			b.ReportMetric(v-d, "overhead-ns/op")
			b.ReportMetric(v/d, "compat/direct")
		})
	}
}

// BenchmarkVerify measures Verify (a string token, as edge.Auth passes it)
// against Decode of the same bytes, alternating blocks of each as
// BenchmarkDecodePaired does, and reports the medians: decode-ns/op,
// verify-ns/op, their difference (what Verify adds to Decode) and the ratio
// verify/decode. For the token generations Decode runs a real verifier
// (HMAC-SHA256 and a JSON payload); tiny shows the absolute cost.
func BenchmarkVerify(b *testing.B) {
	for _, c := range benchCases(b) {
		tok := string(c.in)
		if err := c.verify(tok); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
		b.Run("token="+c.name, func(b *testing.B) {
			b.ReportAllocs()
			d, v := paired(b, func() { mustDecode(b, c.compat, c.in) }, func() {
				if err := c.verify(tok); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(d, "decode-ns/op")
			b.ReportMetric(v, "verify-ns/op")
			b.ReportMetric(v-d, "added-ns/op")
			b.ReportMetric(v/d, "verify/decode")
		})
	}
}

// paired calls x and y in alternating blocks of 32 calls each, b.N calls in
// all, and returns the median per-call time of each in nanoseconds, so that
// load from other processes on a shared machine hits both sides alike.
func paired(b *testing.B, x, y func()) (xNs, yNs float64) {
	const block = 32
	var xs, ys []float64
	for done := 0; done < b.N; done += 2 * block {
		start := time.Now()
		for range block {
			x()
		}
		mid := time.Now()
		for range block {
			y()
		}
		xs = append(xs, float64(mid.Sub(start).Nanoseconds())/block)
		ys = append(ys, float64(time.Since(mid).Nanoseconds())/block)
	}
	return median(xs), median(ys)
}

func mustDecode(b *testing.B, f decodeFunc, in []byte) {
	if err := f(in); err != nil {
		b.Fatal(err)
	}
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

type decodeFunc func([]byte) error

type benchCase struct {
	name   string
	in     []byte
	direct decodeFunc
	compat decodeFunc
	verify func(string) error // Verify of the same decoder
}

// benchCases pairs each token generation, and a trivial non-allocating
// format that shows the absolute overhead, with the matching version's
// Decode called directly. The decoders record to a real OpenTelemetry SDK
// meter provider.
func benchCases(b *testing.B) []benchCase {
	clk := fakeclock.New() // the tokens' expiry clock
	kit := newTokenKit(clk.Now)
	mp := metrictest.New(b)
	vs := kit.versions(time.Now().AddDate(10, 0, 0)) // v1 has a sunset, not yet reached: Decode reads the real clock
	tokens, err := compat.New(vs, compat.WithName("tokens"), compat.WithMeterProvider(mp))
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
	viaTokens := func(in []byte) error { _, _, err := tokens.Decode(context.Background(), in); return err }
	verifyTokens := func(in string) error { _, err := tokens.Verify(context.Background(), in); return err }
	return []benchCase{
		{"v3", []byte(kit.mintV3("k1", "carol", exp)), func(in []byte) error { _, err := vs[0].Decode(in); return err }, viaTokens, verifyTokens},
		{"v2", []byte(kit.mintV2("bob", exp)), func(in []byte) error { _, err := vs[1].Decode(in); return err }, viaTokens, verifyTokens},
		{"v1", []byte(kit.mintV1("alice", exp)), func(in []byte) error { _, err := vs[2].Decode(in); return err }, viaTokens, verifyTokens},
		{"tiny", []byte("1234567"), func(in []byte) error { _, err := tiny[1].Decode(in); return err },
			func(in []byte) error { _, _, err := tinyDec.Decode(context.Background(), in); return err },
			func(in string) error { _, err := tinyDec.Verify(context.Background(), in); return err }},
	}
}

// BenchmarkVerifyBad measures Verify of the inputs that do not decode
// cleanly against Verify of a valid v3 token (HMAC-SHA256 and a JSON
// payload) on the same decoder, alternating blocks of each as
// BenchmarkDecodePaired does, and reports the medians and the ratio
// bad/valid. The budget is 2×: a flood of bad tokens must not cost the
// service much more than the same traffic of good ones. The decoder logs
// through its own log budget into a text handler that discards its output,
// so all but the first records of each kind are suppressed, as in a flood.
//
//   - forged: a v3 token with a wrong signature (v3 fails, then v1);
//   - garbage: no version's Match claims it, v1 fails;
//   - past_sunset: a valid v1 token after v1's sunset, accepted and
//     logged;
//   - panic: a version whose Match panics on it (recovered, counted,
//     logged with its stack), then v1 fails.
func BenchmarkVerifyBad(b *testing.B) {
	clk := fakeclock.New()
	kit, other := newTokenKit(clk.Now), wrongKeys(clk.Now)
	vs := append([]compat.Version[Claims]{{Name: "v9", Match: func(b []byte) bool {
		if bytes.HasPrefix(b, []byte("v9.")) {
			panic("v9 parser bug")
		}
		return false
	}, Decode: func([]byte) (Claims, error) { return Claims{}, errMalformed }}},
		kit.versions(time.Now().Add(-time.Hour))...)
	dec, err := compat.New(vs, compat.WithName("tokens"), compat.WithMeterProvider(metrictest.New(b)),
		compat.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	exp := t0.Add(time.Hour)
	valid := kit.mintV3("k1", "carol", exp)
	verify := func(tok string) error { _, err := dec.Verify(context.Background(), tok); return err }
	if err := verify(valid); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, tok string
		ok        bool
	}{
		{"forged", other.mintV3("k1", "mallory", exp), false},
		{"garbage", "not a token at all, just noise of about a token's length", false},
		{"past_sunset", kit.mintV1("alice", exp), true},
		{"panic", "v9." + valid[3:], false},
	} {
		if err := verify(c.tok); (err == nil) != c.ok {
			b.Fatalf("%s: %v", c.name, err)
		}
		b.Run("token="+c.name, func(b *testing.B) {
			g, v := paired(b, func() { _ = verify(valid) }, func() { _ = verify(c.tok) })
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(g, "valid-ns/op")
			b.ReportMetric(v, "bad-ns/op")
			b.ReportMetric(v/g, "bad/valid")
		})
	}
}

// BenchmarkJSONField measures a JSONField match on a small document, for a
// plain integer literal (the common case), integral literals in other
// spellings, and a string.
func BenchmarkJSONField(b *testing.B) {
	isV2, isStr := compat.JSONField("version", 2), compat.JSONField("version", "2")
	for _, c := range []struct {
		name  string
		match func([]byte) bool
		doc   string
	}{
		{"int", isV2, `{"id":"a1","version":2}`},
		{"int_frac", isV2, `{"id":"a1","version":2.0}`},
		{"int_exp", isV2, `{"id":"a1","version":20e-1}`},
		{"string", isStr, `{"id":"a1","version":"2"}`},
	} {
		doc := []byte(c.doc)
		if !c.match(doc) {
			b.Fatalf("%s: no match", c.name)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.match(doc)
			}
		})
	}
}

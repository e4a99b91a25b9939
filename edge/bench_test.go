package edge_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/metrictest"
	"golang.org/x/time/rate"
)

// nopWriter is a ResponseWriter that discards everything.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

func benchRequest(auth string) *http.Request {
	r := httptest.NewRequest("GET", "/api/orders", nil)
	r.Header.Set("Authorization", auth)
	return r
}

// noop is the bare handler every case ends in; it reads the principal so
// the read path is measured too.
var noop = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = edge.PrincipalFrom[user](r.Context())
})

func runBench(b *testing.B, h http.Handler, r *http.Request) {
	b.Run("serial", func(b *testing.B) {
		w := &nopWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := &nopWriter{h: http.Header{}}
			for pb.Next() {
				h.ServeHTTP(w, r)
			}
		})
	})
}

// hmacKey signs the tokens of hmacVerify.
var hmacKey = []byte("edge benchmark key, 32 bytes....")

// hmacToken returns "v2.<payload>.<base64url HMAC-SHA256 of payload>".
func hmacToken(payload string) string {
	mac := hmac.New(sha256.New, hmacKey)
	mac.Write([]byte(payload))
	return "v2." + payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// forgedToken returns a token for payload that carries the signature of
// another payload.
func forgedToken(payload string) string {
	other := hmacToken(payload + "x")
	return "v2." + payload + other[strings.LastIndexByte(other, '.'):]
}

// hmacVerify is a real verifier: it checks a v2 token's HMAC-SHA256
// signature, the cost a service pays for every token. A wrong signature is
// ErrInvalid, the old v1 format ErrUnsupportedVersion.
func hmacVerify(_ context.Context, tok string) (user, error) {
	rest, ok := strings.CutPrefix(tok, "v2.")
	if !ok {
		if strings.HasPrefix(tok, "v1:") {
			return user{}, edge.ErrUnsupportedVersion
		}
		return user{}, edge.ErrMalformed
	}
	payload, sig, ok := strings.Cut(rest, ".")
	var want [sha256.Size]byte
	if n, err := base64.RawURLEncoding.Decode(want[:], []byte(sig)); !ok || err != nil || n != len(want) {
		return user{}, edge.ErrMalformed
	}
	mac := hmac.New(sha256.New, hmacKey)
	mac.Write([]byte(payload))
	if !hmac.Equal(mac.Sum(nil), want[:]) {
		return user{}, edge.ErrInvalid
	}
	return user{Name: payload}, nil
}

// BenchmarkAuth compares, per verifier, in one run: Auth on a valid token,
// Auth on a bad token (classified, counted, logged within budget, continued
// as anonymous), and the naive middleware on the same bad token (500 plus a
// stack trace in the log); baseline is the bare handler. With the trivial
// verifier the bad token is the old format (the I1 path); with the real
// HMAC-SHA256 verifier it is a forged signature, which costs verify as much
// as a valid one. The budget: a bad token costs at most 2× a valid token
// with the real verifier.
func BenchmarkAuth(b *testing.B) {
	m := metrictest.New(b)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.Run("baseline", func(b *testing.B) { runBench(b, noop, benchRequest("Bearer v2.user42")) })
	for _, v := range []struct {
		name       string
		verify     func(context.Context, string) (user, error)
		valid, bad string
	}{
		{"trivial", floodVerify, "v2.user42", "v1:user42"},
		{"hmac", hmacVerify, hmacToken("user42"), forgedToken("user42")},
	} {
		b.Run(v.name, func(b *testing.B) {
			auth := edge.Auth(v.verify, edge.WithMeterProvider(m), edge.WithLogger(logger))(noop)
			naive := naiveAuth(v.verify, logger)(noop)
			valid, bad := benchRequest("Bearer "+v.valid), benchRequest("Bearer "+v.bad)
			b.Run("valid", func(b *testing.B) { runBench(b, auth, valid) })
			b.Run("bad", func(b *testing.B) { runBench(b, auth, bad) })
			b.Run("naive_bad", func(b *testing.B) { runBench(b, naive, bad) })
			b.Run("interleaved", func(b *testing.B) { benchInterleaved(b, auth, naive, valid, bad) })
		})
	}
}

// benchInterleaved measures bad/valid on a shared, noisy machine by
// alternating short blocks of valid and bad requests: both see the same
// load, and bad/valid is the ratio of their total times.
func benchInterleaved(b *testing.B, auth, naive http.Handler, valid, bad *http.Request) {
	b.Run("serial", func(b *testing.B) {
		var t interleaveTimes
		w := &nopWriter{h: http.Header{}}
		for b.Loop() {
			t.round(auth, naive, w, valid, bad)
		}
		t.report(b)
	})
	b.Run("parallel", func(b *testing.B) {
		var mu sync.Mutex
		var all interleaveTimes
		b.RunParallel(func(pb *testing.PB) {
			var t interleaveTimes
			w := &nopWriter{h: http.Header{}}
			for pb.Next() {
				t.round(auth, naive, w, valid, bad)
			}
			mu.Lock()
			all.add(t)
			mu.Unlock()
		})
		all.report(b)
	})
}

// TestHMACVerify: the benchmark's verifier accepts its own tokens and
// rejects a forged signature and the old format.
func TestHMACVerify(t *testing.T) {
	tok := hmacToken("user42")
	if u, err := hmacVerify(t.Context(), tok); err != nil || u.Name != "user42" {
		t.Fatalf("valid token: %v, %v", u, err)
	}
	for tok, want := range map[string]error{forgedToken("user42"): edge.ErrInvalid, "v1:user42": edge.ErrUnsupportedVersion, "v2.user42": edge.ErrMalformed} {
		if _, err := hmacVerify(t.Context(), tok); err != want {
			t.Errorf("%q: %v, want %v", tok, err, want)
		}
	}
}

const block = 64 // requests per block; naive blocks are block/8

type interleaveTimes struct {
	valid, bad, naive time.Duration
	rounds            int
	ratios            []float64 // bad/valid of each round
}

func (t *interleaveTimes) round(auth, naive http.Handler, w http.ResponseWriter, valid, bad *http.Request) {
	t0 := time.Now()
	for range block {
		auth.ServeHTTP(w, valid)
	}
	t1 := time.Now()
	for range block {
		auth.ServeHTTP(w, bad)
	}
	t2 := time.Now()
	for range block / 8 {
		naive.ServeHTTP(w, bad)
	}
	t3 := time.Now()
	t.valid += t1.Sub(t0)
	t.bad += t2.Sub(t1)
	t.naive += t3.Sub(t2)
	t.rounds++
	t.ratios = append(t.ratios, float64(t2.Sub(t1))/float64(t1.Sub(t0)))
}

func (t *interleaveTimes) add(o interleaveTimes) {
	t.valid += o.valid
	t.bad += o.bad
	t.naive += o.naive
	t.rounds += o.rounds
	t.ratios = append(t.ratios, o.ratios...)
}

func (t *interleaveTimes) report(b *testing.B) {
	if t.rounds == 0 {
		return
	}
	v := float64(t.valid) / float64(t.rounds*block)
	bd := float64(t.bad) / float64(t.rounds*block)
	nv := float64(t.naive) / float64(t.rounds*block/8)
	b.ReportMetric(v, "valid-ns/req")
	b.ReportMetric(bd, "bad-ns/req")
	b.ReportMetric(bd/v, "bad/valid")
	slices.Sort(t.ratios)
	b.ReportMetric(t.ratios[len(t.ratios)/2], "median-bad/valid")
	b.ReportMetric(nv/v, "naive_bad/valid")
	b.ReportMetric(0, "ns/op") // an op is a mixed round; see the metrics
}

// TestAuthValidAllocs proves the valid-token cost: exactly the two
// allocations of storing the principal (one context node holding principal
// and result, and r.WithContext's request copy), against three for the
// usual context.WithValue + r.WithContext of a struct principal.
func TestAuthValidAllocs(t *testing.T) {
	h := edge.Auth(floodVerify, edge.WithCookie("session"), edge.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))(noop)
	r := benchRequest("Bearer v2.user42")
	w := &nopWriter{h: http.Header{}}
	cookie := httptest.NewRequest("GET", "/api/orders", nil)
	cookie.Header.Set("Cookie", `theme=dark; session="v2.user42"; lang=en`)
	if got := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, cookie) }); got != 2 {
		t.Errorf("allocs: Auth valid token from a cookie %v, want 2", got)
	}
	got := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) })
	type key struct{}
	ref := testing.AllocsPerRun(1000, func() {
		u, _ := floodVerify(r.Context(), "v2.user42")
		noop.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, u)))
	})
	base := testing.AllocsPerRun(1000, func() { noop.ServeHTTP(w, r) })
	if base != 0 || got != 2 || got > ref {
		t.Fatalf("allocs: bare %v, Auth valid %v, WithValue+WithContext %v; want 0, 2, >= 2", base, got, ref)
	}
	t.Logf("allocs/op: bare %v, Auth valid %v, context.WithValue+r.WithContext %v", base, got, ref)
}

// TestRefusalAllocs pins the cost of a refusal: one allocation, the header
// value slice that each response owns (Retry-After for Shed, WWW-Authenticate
// for a required Auth), so that no later middleware can edit another
// response's header through a shared slice.
func TestRefusalAllocs(t *testing.T) {
	quiet := edge.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	frozen := func() time.Time { return time.Unix(1_700_000_000, 0) }
	tests := []struct {
		name string
		h    http.Handler
		auth string
	}{
		{"Auth required, bad token", edge.Auth(floodVerify, edge.WithRequired(), quiet)(noop), "Bearer v1:user42"},
		{"Auth required, no token", edge.Auth(floodVerify, edge.WithRequired(), quiet)(noop), ""},
		{"Shed rate", edge.Shed(edge.WithRate(rate.Every(30*time.Second), 1), edge.WithClock(frozen), quiet)(noop), ""},
	}
	for _, tt := range tests {
		r := benchRequest(tt.auth)
		if tt.auth == "" {
			r.Header.Del("Authorization")
		}
		w := &nopWriter{h: http.Header{}}
		if got := testing.AllocsPerRun(1000, func() { tt.h.ServeHTTP(w, r) }); got != 1 {
			t.Errorf("%s: %v allocs, want 1", tt.name, got)
		}
	}
}

// BenchmarkShed measures an admitted request through an in-flight limit,
// static and adaptive, with nothing else configured (the handler is a no-op,
// so this is Shed's own cost). The adaptive limit's bounds keep it above the
// benchmark's concurrency, so every request is admitted. Budget: at most 1%
// of a loopback round trip (about 50 µs here).
func BenchmarkShed(b *testing.B) {
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
	r := benchRequest("")
	b.Run("none", func(b *testing.B) { runBench(b, edge.Shed(quiet)(noop), r) })
	b.Run("static", func(b *testing.B) { runBench(b, edge.Shed(edge.WithMaxInFlight(1000), quiet)(noop), r) })
	b.Run("adaptive", func(b *testing.B) {
		runBench(b, edge.Shed(edge.WithAdaptiveLimit(edge.WithLimitBounds(256, 1000)), quiet)(noop), r)
	})
	// A refusal: the only slot is held by a request that waits until the end.
	refused := func(b *testing.B, opt edge.ShedOption) {
		hold, held := make(chan struct{}), make(chan struct{})
		h := edge.Shed(opt, quiet)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				close(held)
				<-hold
			}
		}))
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(&nopWriter{h: http.Header{}}, httptest.NewRequest("GET", "/hold", nil))
		}()
		<-held
		runBench(b, h, r)
		close(hold)
		<-done
	}
	b.Run("static-refused", func(b *testing.B) { refused(b, edge.WithMaxInFlight(1)) })
	b.Run("adaptive-refused", func(b *testing.B) { refused(b, edge.WithAdaptiveLimit()) })
}

// TestShedAdmittedAllocs: admitting a request through either limit
// allocates nothing.
func TestShedAdmittedAllocs(t *testing.T) {
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
	r := benchRequest("")
	w := &nopWriter{h: http.Header{}}
	for name, h := range map[string]http.Handler{
		"static":   edge.Shed(edge.WithMaxInFlight(8), quiet)(noop),
		"adaptive": edge.Shed(edge.WithAdaptiveLimit(), quiet)(noop),
	} {
		if got := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); got != 0 {
			t.Errorf("%s: %v allocs per admitted request, want 0", name, got)
		}
	}
}

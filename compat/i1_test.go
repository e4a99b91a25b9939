package compat_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/compat"
	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/logbudget"
)

const month = 30 * 24 * time.Hour

type attemptWant struct {
	version string
	err     error
}

// TestI1TokenGenerations replays incident I1: tokens of three generations
// are in the wild at once, and all of them must keep decoding into today's
// Claims; everything else fails with a typed error, and the per-version
// counts are exact.
func TestI1TokenGenerations(t *testing.T) {
	clk := fakeclock.New()
	kit := newTokenKit(clk.Now)
	other := wrongKeys(clk.Now)
	mp := metrictest.New(t)
	dec, err := compat.New(kit.versions(t0.Add(month)), compat.WithName("tokens"),
		compat.WithClock(clk.Now), compat.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(time.Hour)
	tests := i1Cases(kit, other, exp)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, res, err := dec.Decode(context.Background(), []byte(tt.token))
			if res != tt.result {
				t.Errorf("result = %+v, want %+v", res, tt.result)
			}
			if tt.attempts == nil && !tt.tooLarge {
				if err != nil || got != tt.want {
					t.Fatalf("Decode = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if got != (Claims{}) {
				t.Errorf("claims on failure = %+v", got)
			}
			var ce *compat.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want *compat.Error", err, err)
			}
			if tt.tooLarge {
				if !errors.Is(err, compat.ErrTooLarge) || errors.Is(err, compat.ErrUnrecognized) || len(ce.Attempts) != 0 {
					t.Fatalf("err = %v, want only ErrTooLarge", err)
				}
				if ce.Size != len(tt.token) || ce.Limit != compat.DefaultMaxSize {
					t.Errorf("size, limit = %d, %d", ce.Size, ce.Limit)
				}
				return
			}
			if !errors.Is(err, compat.ErrUnrecognized) || errors.Is(err, compat.ErrTooLarge) || errors.Is(err, compat.ErrSunset) {
				t.Errorf("err = %v, want ErrUnrecognized only", err)
			}
			if len(ce.Attempts) != len(tt.attempts) {
				t.Fatalf("attempts = %+v, want %+v", ce.Attempts, tt.attempts)
			}
			for i, a := range tt.attempts {
				if ce.Attempts[i].Version != a.version || !errors.Is(ce.Attempts[i].Err, a.err) {
					t.Errorf("attempt %d = %+v, want %s: %v", i, ce.Attempts[i], a.version, a.err)
				}
				if !errors.Is(err, a.err) {
					t.Errorf("errors.Is(err, %v) = false", a.err)
				}
			}
			if ce.Decoder != "tokens" || ce.Size != len(tt.token) {
				t.Errorf("decoder, size = %q, %d", ce.Decoder, ce.Size)
			}
		})
	}

	want := map[string]int64{
		"tokens|v1|fallback":   2,
		"tokens|v2|ok":         1,
		"tokens|v3|ok":         2,
		"tokens||unrecognized": 10,
		"tokens||too_large":    1,
	}
	if got := decodes(t, mp); !reflect.DeepEqual(got, want) {
		t.Fatalf("decodes = %v\nwant      %v", got, want)
	}

	// A day of traffic: every generation in the wild at once.
	ctx := context.Background()
	for i := range 300 {
		for _, tok := range []string{
			kit.mintV3("k2", fmt.Sprint("user", i), exp),
			kit.mintV2(fmt.Sprint("user", i), exp),
			kit.mintV1(fmt.Sprint("user", i), exp),
		} {
			if i%3 != 0 && tok[:2] == "v2" || i%10 != 0 && tok[:2] != "v3" && tok[:2] != "v2" {
				continue // 300 v3, 100 v2, 30 v1
			}
			c, _, err := dec.Decode(ctx, []byte(tok))
			if err != nil || c.Subject != fmt.Sprint("user", i) {
				t.Fatalf("Decode(%q) = %+v, %v", tok, c, err)
			}
		}
	}
	want["tokens|v3|ok"] += 300
	want["tokens|v2|ok"] += 100
	want["tokens|v1|fallback"] += 30
	if got := decodes(t, mp); !reflect.DeepEqual(got, want) {
		t.Fatalf("decodes = %v\nwant      %v", got, want)
	}
	st := dec.Stats()
	if !st.Versions[2].LastSeen.Equal(t0) {
		t.Errorf("v1 LastSeen = %v, want %v", st.Versions[2].LastSeen, t0)
	}
	st.Versions[2].LastSeen = time.Time{}
	wantStats := compat.Stats{
		Versions: []compat.VersionStats{
			{Name: "v3", OK: 302},
			{Name: "v2", OK: 101},
			{Name: "v1", Fallback: 32},
		},
		Unrecognized: 10,
		TooLarge:     1,
	}
	if !reflect.DeepEqual(st, wantStats) {
		t.Fatalf("Stats = %+v\nwant    %+v", st, wantStats)
	}
	if n := st.Versions[0].Total(); n != 302 {
		t.Errorf("v3 Total = %d", n)
	}
}

// TestI1TruncatedTokens cuts valid tokens of every generation at every
// length: no prefix decodes, and each failure is typed.
func TestI1TruncatedTokens(t *testing.T) {
	clk := fakeclock.New()
	kit := newTokenKit(clk.Now)
	mp := metrictest.New(t)
	dec, err := compat.New(kit.versions(time.Time{}), compat.WithName("tokens"), compat.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(time.Hour)
	n := 0
	for _, tok := range []string{kit.mintV1("alice", exp), kit.mintV2("bob", exp), kit.mintV3("k1", "carol", exp)} {
		for i := range len(tok) {
			n++
			_, _, err := dec.Decode(context.Background(), []byte(tok[:i]))
			var ce *compat.Error
			if !errors.As(err, &ce) || !errors.Is(err, compat.ErrUnrecognized) || len(ce.Attempts) == 0 {
				t.Fatalf("Decode(%q) err = %v, want *compat.Error with attempts", tok[:i], err)
			}
			for _, a := range ce.Attempts {
				if !errors.Is(a.Err, errMalformed) && !errors.Is(a.Err, errBadSignature) && !errors.Is(a.Err, errUnknownKey) {
					t.Errorf("Decode(%q): untyped attempt error %+v", tok[:i], a)
				}
			}
		}
	}
	want := map[string]int64{"tokens||unrecognized": int64(n)}
	if got := decodes(t, mp); !reflect.DeepEqual(got, want) {
		t.Fatalf("decodes = %v, want %v", got, want)
	}
}

// TestI1Sunset retires v1: before its sunset it is accepted as a fallback;
// after it, it is accepted but reported and logged within the budget, or
// refused with ErrSunset by a strict decoder.
func TestI1Sunset(t *testing.T) {
	clk := fakeclock.New()
	kit := newTokenKit(clk.Now)
	mp := metrictest.New(t)
	var out logtest.Buffer
	// One budget for both decoders, as a service would share it: two
	// records per key per minute.
	budget, err := logbudget.New(out.Handler(), logbudget.WithKeyAttr("reason"), logbudget.WithLimit(2),
		logbudget.WithClock(clk.Now), logbudget.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	sunset := t0.Add(month)
	common := []compat.Option{compat.WithClock(clk.Now), compat.WithMeterProvider(mp), compat.WithLogger(slog.New(budget))}
	lax, err := compat.New(kit.versions(sunset), append(common, compat.WithName("lax"))...)
	if err != nil {
		t.Fatal(err)
	}
	strict, err := compat.New(kit.versions(sunset), append(common, compat.WithName("strict"), compat.WithRejectAfterSunset(true))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exp := t0.Add(365 * 24 * time.Hour)
	v1, v3 := []byte(kit.mintV1("alice", exp)), []byte(kit.mintV3("k1", "carol", exp))

	// Before the sunset both accept v1 as a fallback.
	for _, d := range []*compat.Decoder[Claims]{lax, strict} {
		if _, res, err := d.Decode(ctx, v1); err != nil || res != (compat.Result{Version: "v1", Fallback: true}) {
			t.Fatalf("%s before sunset: %+v, %v", d.Name(), res, err)
		}
	}

	clk.Advance(month) // exactly at the sunset
	for range 6 {
		c, res, err := lax.Decode(ctx, v1)
		if err != nil || c.Subject != "alice" || res != (compat.Result{Version: "v1", Fallback: true, PastSunset: true}) {
			t.Fatalf("lax after sunset: %+v, %+v, %v", c, res, err)
		}
	}
	c, res, err := strict.Decode(ctx, v1)
	if c != (Claims{}) || res != (compat.Result{Version: "v1", PastSunset: true}) {
		t.Errorf("strict after sunset: %+v, %+v", c, res)
	}
	var ce *compat.Error
	if !errors.Is(err, compat.ErrSunset) || !errors.Is(err, compat.ErrUnrecognized) || !errors.As(err, &ce) {
		t.Fatalf("strict err = %v, want ErrSunset and ErrUnrecognized", err)
	}
	if len(ce.Attempts) != 1 || ce.Attempts[0] != (compat.Attempt{Version: "v1", Err: compat.ErrSunset}) {
		t.Errorf("attempts = %+v", ce.Attempts)
	}
	if _, res, err := strict.Decode(ctx, v3); err != nil || res != (compat.Result{Version: "v3"}) {
		t.Errorf("strict v3: %+v, %v", res, err)
	}

	// The budget let 2 of the 6 warnings through; the next interval starts
	// with a summary of the 4 it suppressed.
	clk.Advance(time.Minute)
	if _, _, err := lax.Decode(ctx, v1); err != nil {
		t.Fatal(err)
	}
	warn := `level=WARN msg="compat: version past sunset accepted" compat.decoder=lax compat.version=v1 reason=lax/v1 sunset=` +
		sunset.Format("2006-01-02T15:04:05.000Z07:00")
	wantLogs := []string{warn, warn,
		`level=WARN msg="log budget: records suppressed" message="compat: version past sunset accepted" suppressed=4 reason=lax/v1`,
		warn}
	if got := out.Lines(); !reflect.DeepEqual(got, wantLogs) {
		t.Errorf("logs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLogs, "\n"))
	}
	if n := mp.Sum(logbudget.SuppressedMetric); n != 4 {
		t.Errorf("%s = %d, want 4", logbudget.SuppressedMetric, n)
	}

	want := map[string]int64{
		"lax|v1|fallback":       1,
		"lax|v1|past_sunset":    7,
		"strict|v1|fallback":    1,
		"strict|v1|past_sunset": 1,
		"strict|v3|ok":          1,
	}
	if got := decodes(t, mp); !reflect.DeepEqual(got, want) {
		t.Fatalf("decodes = %v\nwant      %v", got, want)
	}
	st := lax.Stats().Versions[2]
	if !st.LastSeen.Equal(sunset.Add(time.Minute)) {
		t.Errorf("lax v1 LastSeen = %v", st.LastSeen)
	}
	if st.LastSeen = (time.Time{}); st != (compat.VersionStats{Name: "v1", Fallback: 1, PastSunset: 7}) {
		t.Errorf("lax v1 stats = %+v", st)
	}
	if st := strict.Stats(); st.Unrecognized != 0 || st.Versions[2].PastSunset != 1 {
		t.Errorf("strict stats = %+v", st)
	}
}

// TestVerifyForEdge checks that Verify has edge.Auth's verifier signature
// and allocates nothing beyond the version's own Decode and the copy of the
// token.
func TestVerifyForEdge(t *testing.T) {
	clk := fakeclock.New()
	kit := newTokenKit(clk.Now)
	vs := kit.versions(time.Time{})
	dec, err := compat.New(vs)
	if err != nil {
		t.Fatal(err)
	}
	var verify func(context.Context, string) (Claims, error) = dec.Verify
	exp := t0.Add(time.Hour)
	for i, tok := range []string{kit.mintV3("k1", "carol", exp), kit.mintV2("bob", exp), kit.mintV1("alice", exp)} {
		c, err := verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("Verify(%q): %v", tok, err)
		}
		b := []byte(tok)
		direct := testing.AllocsPerRun(100, func() { _, _ = vs[i].Decode(b) })
		viaDecode := testing.AllocsPerRun(100, func() { _, _, _ = dec.Decode(context.Background(), b) })
		viaVerify := testing.AllocsPerRun(100, func() { _, _ = dec.Verify(context.Background(), tok) })
		if viaDecode != direct || viaVerify != direct+1 {
			t.Errorf("%s: allocs direct %v, Decode %v, Verify %v; want n, n, n+1", c.Subject, direct, viaDecode, viaVerify)
		}
	}
	if _, err := verify(context.Background(), "garbage"); !errors.Is(err, compat.ErrUnrecognized) {
		t.Errorf("Verify(garbage) = %v", err)
	}
	if dec.Name() != "compat_test.Claims" {
		t.Errorf("default name = %q", dec.Name())
	}
}

type i1Case struct {
	name     string
	token    string
	want     Claims
	result   compat.Result
	attempts []attemptWant // on failure
	tooLarge bool
}

// i1Cases are the tokens of TestI1TokenGenerations (they also seed
// FuzzDecode): every generation valid, and the ways each can fail. other
// mints the same formats with the wrong keys.
func i1Cases(kit, other *tokenKit, exp time.Time) []i1Case {
	v3 := kit.mintV3("k1", "carol", exp)
	return []i1Case{
		{name: "v1", token: kit.mintV1("alice", exp),
			want: Claims{Subject: "alice", Expires: exp}, result: compat.Result{Version: "v1", Fallback: true}},
		{name: "v2", token: kit.mintV2("bob", exp),
			want: Claims{Subject: "bob", Expires: exp}, result: compat.Result{Version: "v2"}},
		{name: "v3 key k1", token: v3,
			want: Claims{Subject: "carol", Expires: exp, KeyID: "k1"}, result: compat.Result{Version: "v3"}},
		{name: "v3 key k2", token: kit.mintV3("k2", "dave", exp),
			want: Claims{Subject: "dave", Expires: exp, KeyID: "k2"}, result: compat.Result{Version: "v3"}},
		{name: "v1 that looks like v2", token: kit.mintV1("v2.erin", exp),
			want: Claims{Subject: "v2.erin", Expires: exp}, result: compat.Result{Version: "v1", Fallback: true}},

		{name: "v1 wrong signature", token: other.mintV1("mallory", exp),
			attempts: []attemptWant{{"v1", errBadSignature}}},
		{name: "v2 wrong signature", token: other.mintV2("mallory", exp),
			attempts: []attemptWant{{"v2", errBadSignature}, {"v1", errMalformed}}},
		{name: "v3 wrong signature", token: other.mintV3("k1", "mallory", exp),
			attempts: []attemptWant{{"v3", errBadSignature}, {"v1", errMalformed}}},
		{name: "v3 tampered payload", token: strings.Replace(v3, "v3.k1.e", "v3.k1.f", 1),
			attempts: []attemptWant{{"v3", errBadSignature}, {"v1", errMalformed}}},
		{name: "v3 unknown key id", token: kit.mintV3("k9", "mallory", exp),
			attempts: []attemptWant{{"v3", errUnknownKey}, {"v1", errMalformed}}},
		{name: "v3 expired", token: kit.mintV3("k1", "carol", t0.Add(-time.Second)),
			attempts: []attemptWant{{"v3", errExpired}, {"v1", errMalformed}}},
		{name: "v1 expired", token: kit.mintV1("alice", t0),
			attempts: []attemptWant{{"v1", errExpired}}},
		{name: "v3 truncated", token: v3[:len(v3)-5],
			attempts: []attemptWant{{"v3", errBadSignature}, {"v1", errMalformed}}},
		{name: "future v4", token: "v4" + strings.TrimPrefix(kit.mintV3("k1", "carol", exp), "v3"),
			attempts: []attemptWant{{"v1", errMalformed}}},
		{name: "empty", token: "",
			attempts: []attemptWant{{"v1", errMalformed}}},
		{name: "too large", token: strings.Repeat("a", compat.DefaultMaxSize+1), tooLarge: true},
	}
}

// wrongKeys returns a kit that mints the same formats with the wrong keys.
func wrongKeys(now func() time.Time) *tokenKit {
	other := newTokenKit(now)
	other.keyV1, other.keyV2 = []byte("not-the-key"), []byte("not-the-key")
	other.keysV3 = map[string][]byte{"k1": []byte("not-the-key")}
	return other
}

package rollout_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/blastradius/blastradius/rollout"
)

// goldenVectors pin the v1 bucket mapping forever. If this test fails, the
// mapping changed and every user in production would be reshuffled: revert
// the change. They were also checked against an independent implementation
// written from the specification in doc.go. The 140-byte key exercises the
// two-byte length prefix.
var goldenVectors = []struct {
	salt, key string
	bucket    uint32
}{
	{"checkout-v2", "user-1", 247368},
	{"checkout-v2", "user-2", 651297},
	{"checkout-v2", "user-12345", 454916},
	{"checkout-v2", "", 132965},
	{"search-v3", "user-1", 55365},
	{"search-v3", "alice@example.com", 558438},
	{"a", "b", 628147},
	{"", "", 468148},
	{"", "x", 984493},
	{"x", "", 747123},
	{"payments.ledger_v2", "7f3c2a9e-1b4d-4e8a-9c6f-2d5e8b1a0c3f", 411203},
	{"payments.ledger_v2", "tenant-42/user-7", 138750},
	{"salt", "héllo wörld", 998701},
	{"salt", "日本語のキー", 110341},
	{"long", "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", 520476},
	{"v1", "v1", 74998},
	{"ab", "c", 532718},
	{"a", "bc", 168568},
	{"power-peg", "NYSE:AAPL", 755375},
	{"checkout-v2", "user-999999", 145353},
}

func TestGoldenVectors(t *testing.T) {
	for _, v := range goldenVectors {
		if got := rollout.Bucket(v.salt, v.key); got != v.bucket {
			t.Errorf("Bucket(%q, %q) = %d, want %d: the v1 mapping changed", v.salt, v.key, got, v.bucket)
		}
	}
}

// TestGateAgreesWithBucket checks that Enabled, with its precomputed salt
// state, is exactly bucket < percent × 10⁴, at the boundary.
func TestGateAgreesWithBucket(t *testing.T) {
	for _, v := range goldenVectors {
		if v.salt == "" {
			continue // WithSalt rejects an empty salt
		}
		for _, units := range []uint32{v.bucket, v.bucket + 1} {
			p := float64(units) / 1e4
			g, err := rollout.New("g", rollout.WithSalt(v.salt), rollout.WithPercent(p))
			if err != nil {
				t.Fatal(err)
			}
			want := v.bucket < units
			if got := g.Enabled(v.key); got != want {
				t.Errorf("salt %q key %q at %v%%: Enabled = %v, want %v", v.salt, v.key, p, got, want)
			}
		}
	}
	// The salt defaults to the name.
	g, _ := rollout.New("checkout-v2", rollout.WithPercent(24.7369))
	if !g.Enabled("user-1") {
		t.Error("user-1 (bucket 247368) not enabled at 24.7369% with the default salt")
	}
	g, _ = rollout.New("checkout-v2", rollout.WithPercent(24.7368))
	if g.Enabled("user-1") {
		t.Error("user-1 (bucket 247368) enabled at 24.7368%")
	}
}

// TestUniformity: chi-square over 10⁵ keys into 100 bins, at p = 0.001,
// for several key shapes and salts.
func TestUniformity(t *testing.T) {
	const (
		keys = 100_000
		bins = 100
		// The chi-square critical value for 99 degrees of freedom at
		// p = 0.001.
		critical = 148.230
	)
	shapes := []struct {
		name string
		key  func(i int) string
	}{
		{"decimal", strconv.Itoa},
		{"user-prefix", func(i int) string { return "user-" + strconv.Itoa(i) }},
		{"uuid-like", func(i int) string {
			return fmt.Sprintf("%08x-0000-4000-8000-%012x", i*2654435761%(1<<32), i)
		}},
		{"email", func(i int) string { return "customer" + strconv.Itoa(i) + "@example.com" }},
	}
	for _, salt := range []string{"checkout-v2", "s"} {
		for _, sh := range shapes {
			t.Run(salt+"/"+sh.name, func(t *testing.T) {
				var counts [bins]int
				for i := range keys {
					counts[rollout.Bucket(salt, sh.key(i))*bins/rollout.Buckets]++
				}
				const expected = keys / bins
				chi2 := 0.0
				for _, c := range counts {
					d := float64(c - expected)
					chi2 += d * d / expected
				}
				if chi2 > critical {
					t.Errorf("chi-square = %.1f > %.3f (p = 0.001, 99 df): not uniform", chi2, critical)
				}
				t.Logf("chi-square = %.1f", chi2)
			})
		}
	}
}

// TestMonotonic: every key enabled at p is enabled at every p' > p,
// checked on random keys and random percent pairs, through real gates.
func TestMonotonic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		u1 := r.Uint32N(1_000_001)
		u2 := u1 + r.Uint32N(1_000_001-u1)
		lo, _ := rollout.New("mono", rollout.WithPercent(float64(u1)/1e4))
		hi, _ := rollout.New("mono", rollout.WithPercent(float64(u2)/1e4))
		for range 100 {
			key := fmt.Sprintf("k%d", r.Uint64())
			if lo.Enabled(key) && !hi.Enabled(key) {
				t.Fatalf("key %q enabled at %v%% but not at %v%%", key, float64(u1)/1e4, float64(u2)/1e4)
			}
		}
	}
	// Along a ramp on one gate: the enabled set only grows.
	g, _ := rollout.New("ramp")
	enabled := map[string]bool{}
	for _, p := range []float64{0, 0.0001, 0.5, 1, 5, 12.3456, 50, 99.9999, 100} {
		if err := g.SetPercent(p); err != nil {
			t.Fatal(err)
		}
		n := 0
		for i := range 10_000 {
			key := "user-" + strconv.Itoa(i)
			on := g.Enabled(key)
			if enabled[key] && !on {
				t.Fatalf("key %q lost at %v%%", key, p)
			}
			if on {
				enabled[key] = true
				n++
			}
		}
		if p == 100 && n != 10_000 {
			t.Fatalf("at 100%% %d of 10000 keys enabled", n)
		}
		if p == 0 && n != 0 {
			t.Fatalf("at 0%% %d keys enabled", n)
		}
	}
}

// TestExposure: the share of enabled keys matches the percent.
func TestExposure(t *testing.T) {
	const keys = 100_000
	for _, tc := range []struct {
		percent float64
		lo, hi  int
	}{
		{1, 900, 1100},
		{5, 4700, 5300},
		{50, 49_400, 50_600},
	} {
		g, _ := rollout.New("exposure", rollout.WithPercent(tc.percent))
		n := 0
		for i := range keys {
			if g.Enabled("user-" + strconv.Itoa(i)) {
				n++
			}
		}
		if n < tc.lo || n > tc.hi {
			t.Errorf("at %v%%: %d of %d keys enabled, want %d..%d", tc.percent, n, keys, tc.lo, tc.hi)
		}
	}
}

// TestSaltIndependence: two gates at 50% with different salts overlap on
// 25% ± 1% of keys.
func TestSaltIndependence(t *testing.T) {
	const keys = 100_000
	a, _ := rollout.New("checkout-v2", rollout.WithPercent(50))
	b, _ := rollout.New("search-v3", rollout.WithPercent(50))
	same, _ := rollout.New("search-v3-copy", rollout.WithSalt("checkout-v2"), rollout.WithPercent(50))
	both, sameBoth := 0, 0
	for i := range keys {
		k := "user-" + strconv.Itoa(i)
		ea := a.Enabled(k)
		if ea && b.Enabled(k) {
			both++
		}
		if ea == same.Enabled(k) {
			sameBoth++
		}
	}
	share := float64(both) / keys
	if share < 0.24 || share > 0.26 {
		t.Errorf("overlap of two independent 50%% gates = %.4f, want 0.25 ± 0.01", share)
	}
	if sameBoth != keys {
		t.Errorf("gates with the same salt disagree on %d keys", keys-sameBoth)
	}
}

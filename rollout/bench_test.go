package rollout_test

import (
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/blastradius/blastradius/rollout"
)

var sink bool

// benchKeys are typical user keys: 12 bytes. BenchmarkEnabled/uuid uses a
// 36-byte key, since the hash is a byte loop.
var benchKeys = func() []string {
	ks := make([]string, 1024)
	for i := range ks {
		ks[i] = fmt.Sprintf("user-%07d", i*7919)
	}
	return ks
}()

var uuidKeys = func() []string {
	ks := make([]string, 1024)
	for i := range ks {
		ks[i] = fmt.Sprintf("%08x-1b4d-4e8a-9c6f-%012x", i*2654435761%(1<<32), i)
	}
	return ks
}()

// BenchmarkEnabled measures Enabled at 12.5% (every key is hashed) next to
// its baselines in the same run: a bare xxhash of the same key with a
// compare (the floor for a gate) and hash/fnv's FNV-1a of the key.
func BenchmarkEnabled(b *testing.B) {
	steady, _ := rollout.New("checkout-v2", rollout.WithPercent(12.5))
	ramping, _ := rollout.New("checkout-v2", rollout.WithSchedule(
		rollout.Step{Percent: 12.5, Hold: 1000 * time.Hour}, rollout.Step{Percent: 100}))
	killed, _ := rollout.New("checkout-v2", rollout.WithPercent(12.5))
	killed.Kill("bench")
	const threshold = uint64(1<<64-1) / 8

	cases := []struct {
		name string
		keys []string
		f    func(string) bool
	}{
		{"gate", benchKeys, steady.Enabled},
		{"gate-uuid", uuidKeys, steady.Enabled},
		{"gate-ramping", benchKeys, ramping.Enabled},
		{"gate-killed", benchKeys, killed.Enabled},
		{"baseline-xxhash", benchKeys, func(k string) bool { return xxhash.Sum64String(k) < threshold }},
		{"baseline-xxhash-uuid", uuidKeys, func(k string) bool { return xxhash.Sum64String(k) < threshold }},
		{"baseline-fnv", benchKeys, func(k string) bool {
			h := fnv.New64a()
			_, _ = h.Write([]byte(k))
			return h.Sum64() < threshold
		}},
	}
	for _, c := range cases {
		b.Run(c.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			keys, f := c.keys, c.f
			var on bool
			i := 0
			for b.Loop() {
				on = f(keys[i&1023]) != on
				i++
			}
			sink = on
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			keys, f := c.keys, c.f
			b.RunParallel(func(pb *testing.PB) {
				var on bool
				i := 0
				for pb.Next() {
					on = f(keys[i&1023]) != on
					i++
				}
				if on {
					sink = on
				}
			})
		})
	}
}

func BenchmarkBucket(b *testing.B) {
	b.ReportAllocs()
	var s uint32
	i := 0
	for b.Loop() {
		s += rollout.Bucket("checkout-v2", benchKeys[i&1023])
		i++
	}
	sink = s == 0
}

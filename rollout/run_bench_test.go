package rollout_test

import (
	"context"
	"testing"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

var intSink int

// BenchmarkRun measures Run on the old arm (gate at 0%), the new arm (gate
// at 100%), a hashed mix (12.5%) and the new arm fed to a guard, next to
// calling the arm directly through the same func value: the overhead of
// Run is the difference. BenchmarkTimeNow, in the same run, prices the
// clock read that Run avoids.
func BenchmarkRun(b *testing.B) {
	ctx := context.Background()
	old, _ := rollout.New("lookup-v2", rollout.WithPercent(0))
	mixed, _ := rollout.New("lookup-v2", rollout.WithPercent(12.5))
	all, _ := rollout.New("lookup-v2", rollout.WithPercent(100))
	guarded, _ := rollout.New("lookup-v2", rollout.WithPercent(100), rollout.WithGuard())
	fn := intArm
	cases := []struct {
		name string
		f    func(key string) (int, error)
	}{
		{"direct", func(string) (int, error) { return fn(ctx) }},
		{"old", func(k string) (int, error) { return rollout.Run(ctx, old, k, fn, fn) }},
		{"new", func(k string) (int, error) { return rollout.Run(ctx, all, k, fn, fn) }},
		{"mixed-12.5pct", func(k string) (int, error) { return rollout.Run(ctx, mixed, k, fn, fn) }},
		{"new-guarded", func(k string) (int, error) { return rollout.Run(ctx, guarded, k, fn, fn) }},
		{"new-guarded-options", func(k string) (int, error) { return rollout.Run(ctx, guarded, k, fn, fn, runOpts...) }},
	}
	for _, c := range cases {
		benchArm(b, c.name, c.f)
	}
}

// benchArm runs f over the benchmark keys, serially and in parallel, as
// name/serial and name/parallel.
func benchArm(b *testing.B, name string, f func(key string) (int, error)) {
	b.Run(name+"/serial", func(b *testing.B) {
		b.ReportAllocs()
		s, i := 0, 0
		for b.Loop() {
			v, _ := f(benchKeys[i&1023])
			s += v
			i++
		}
		intSink = s
	})
	b.Run(name+"/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			s, i := 0, 0
			for pb.Next() {
				v, _ := f(benchKeys[i&1023])
				s += v
				i++
			}
			if s == 1 {
				intSink = s
			}
		})
	})
}

var timeSink time.Time

// BenchmarkTimeNow is the clock read Run avoids, measured in the same run.
func BenchmarkTimeNow(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		var t time.Time
		for b.Loop() {
			t = time.Now()
		}
		timeSink = t
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var t time.Time
			for pb.Next() {
				t = time.Now()
			}
			if t.IsZero() {
				timeSink = t
			}
		})
	})
}

// BenchmarkShadow measures Shadow with the new arm run and compared
// (synchronously and asynchronously) and with the key not gated (old arm
// only), next to calling the arm directly.
func BenchmarkShadow(b *testing.B) {
	ctx := context.Background()
	none, _ := rollout.New("lookup-v2", rollout.WithPercent(0))
	all, _ := rollout.New("lookup-v2", rollout.WithPercent(100), rollout.WithGuard())
	fn := intArm
	async := []rollout.CallOption{rollout.WithAsync(), rollout.WithMaxConcurrent(1 << 20)}
	cases := []struct {
		name string
		f    func(key string) (int, error)
	}{
		{"direct", func(string) (int, error) { return fn(ctx) }},
		{"not-gated", func(k string) (int, error) { return rollout.Shadow(ctx, none, k, fn, fn) }},
		{"sync", func(k string) (int, error) { return rollout.Shadow(ctx, all, k, fn, fn) }},
		{"async", func(k string) (int, error) { return rollout.Shadow(ctx, all, k, fn, fn, async...) }},
	}
	for _, c := range cases {
		benchArm(b, c.name, c.f)
	}
}

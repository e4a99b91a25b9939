package rollout_test

import (
	"context"
	"testing"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

var intSink int

// BenchmarkRun measures Path.Run on the old arm (gate at 0%), the new arm
// (gate at 100%), a hashed mix (12.5%) and the new arm fed to a guard, next
// to calling the arm directly: the overhead of Run is the difference. BenchmarkTimeNow, in the same run, prices the
// clock read that Run avoids.
func BenchmarkRun(b *testing.B) {
	ctx := context.Background()
	old, _ := rollout.New("lookup-v2", rollout.WithPercent(0))
	mixed, _ := rollout.New("lookup-v2", rollout.WithPercent(12.5))
	all, _ := rollout.New("lookup-v2", rollout.WithPercent(100))
	guarded, _ := rollout.New("lookup-v2", rollout.WithPercent(100), rollout.WithGuard())
	fn := intArm // called through a func value, as Run calls an arm
	arms := rollout.Arms[string, int]{Old: intArm, New: intArm}
	checked := rollout.Arms[string, int]{Old: intArm, New: intArm, Validate: intValid, Fallback: true}
	run := func(g *rollout.Gate, arms rollout.Arms[string, int]) func(key string) (int, error) {
		p, err := rollout.NewPath(g, arms)
		if err != nil {
			b.Fatal(err)
		}
		return func(k string) (int, error) { return p.Run(ctx, k, k) }
	}
	cases := []struct {
		name string
		f    func(key string) (int, error)
	}{
		{"direct", func(k string) (int, error) { return fn(ctx, k) }},
		{"old", run(old, arms)},
		{"new", run(all, arms)},
		{"mixed-12.5pct", run(mixed, arms)},
		{"new-guarded", run(guarded, arms)},
		{"new-guarded-validate-fallback", run(guarded, checked)},
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

// BenchmarkShadow measures Path.Shadow with the new arm run and compared
// (synchronously and asynchronously) and with the key not gated (old arm
// only), next to calling the arm directly.
func BenchmarkShadow(b *testing.B) {
	ctx := context.Background()
	none, _ := rollout.New("lookup-v2", rollout.WithPercent(0))
	all, _ := rollout.New("lookup-v2", rollout.WithPercent(100), rollout.WithGuard())
	fn := intArm
	shadow := func(g *rollout.Gate, async bool) func(key string) (int, error) {
		p, err := rollout.NewPath(g, rollout.Arms[string, int]{Old: intArm, New: intArm, Async: async, MaxConcurrent: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		return func(k string) (int, error) { return p.Shadow(ctx, k, k) }
	}
	cases := []struct {
		name string
		f    func(key string) (int, error)
	}{
		{"direct", func(k string) (int, error) { return fn(ctx, k) }},
		{"not-gated", shadow(none, false)},
		{"sync", shadow(all, false)},
		{"async", shadow(all, true)},
	}
	for _, c := range cases {
		benchArm(b, c.name, c.f)
	}
}

package window_test

import (
	"sync"
	"testing"
	"time"

	"github.com/blastradius/blastradius/internal/window"
)

func sums(c *window.Counter, now time.Time, n int) []int64 {
	dst := make([]int64, n)
	c.Sums(now, dst)
	return dst
}

// TestRolling checks each bucket leaves the window exactly when its slot is
// bucket count slots old.
func TestRolling(t *testing.T) {
	now := time.Unix(1000, 0)
	c := window.New(10*time.Second, 10, 2)
	type step struct {
		advance time.Duration
		add     [2]int64
		want    [2]int64
	}
	steps := []step{
		{0, [2]int64{1, 0}, [2]int64{1, 0}},
		{time.Second, [2]int64{2, 5}, [2]int64{3, 5}},
		{8 * time.Second, [2]int64{0, 0}, [2]int64{3, 5}},    // t=9s: all in window
		{999 * time.Millisecond, [2]int64{}, [2]int64{3, 5}}, // t=9.999s
		{time.Millisecond, [2]int64{}, [2]int64{2, 5}},       // t=10s: the t=0 bucket left
		{time.Second, [2]int64{4, 0}, [2]int64{4, 0}},        // t=11s: the t=1 bucket left
		{25 * time.Second, [2]int64{}, [2]int64{0, 0}},       // long gap clears everything
		{-5 * time.Second, [2]int64{7, 7}, [2]int64{7, 7}},   // a time stepping back counts in the newest bucket
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		for series, n := range s.add {
			if n != 0 {
				c.Add(now, series, n)
			}
		}
		if got := sums(c, now, 2); [2]int64(got) != s.want {
			t.Fatalf("step %d: sums %v, want %v", i, got, s.want)
		}
	}
}

// TestAnyFirstTime: the first stamp starts the window wherever it is,
// before 1970 or at the zero time included, and counts from before the
// first stamp are kept.
func TestAnyFirstTime(t *testing.T) {
	for _, start := range []time.Time{time.Unix(1e9, 0), time.Unix(-1e9, 0), {}} {
		c := window.New(4*time.Second, 4, 1)
		c.AddDeferred(0, 2)
		c.Add(start, 0, 1)
		if got := sums(c, start.Add(3*time.Second), 1)[0]; got != 3 {
			t.Fatalf("start %v: sum %d, want 3", start, got)
		}
		if got := sums(c, start.Add(4*time.Second), 1)[0]; got != 0 {
			t.Fatalf("start %v: sum after the window %d, want 0", start, got)
		}
	}
}

// TestDeferred: deferred counts are stamped at the next touch, into the
// bucket of its time, and AddDeferred reports the pending count.
func TestDeferred(t *testing.T) {
	now := time.Unix(0, 0)
	c := window.New(4*time.Second, 4, 1)
	for i := range 5 {
		if p := c.AddDeferred(0, 1); p != int64(i+1) {
			t.Fatalf("pending = %d, want %d", p, i+1)
		}
	}
	now = now.Add(3 * time.Second)
	c.Flush(now) // stamped at t=3s
	if p := c.AddDeferred(0, 0); p != 0 {
		t.Fatalf("pending after Flush = %d", p)
	}
	now = now.Add(3 * time.Second) // t=6s: the t=3s bucket is still in the window
	if got := sums(c, now, 1)[0]; got != 5 {
		t.Fatalf("sum = %d, want 5", got)
	}
	c.AddDeferred(0, 2)
	if got := sums(c, now, 1)[0]; got != 7 {
		t.Fatalf("Sums includes pending: %d, want 7", got)
	}
	now = now.Add(4 * time.Second)
	if got := sums(c, now, 1)[0]; got != 0 {
		t.Fatalf("sum after window = %d, want 0", got)
	}
}

func TestConcurrent(t *testing.T) {
	now := time.Unix(0, 0)
	c := window.New(time.Hour, 4, 2)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]int64, 2)
			for range 1000 {
				c.Add(now, 0, 1)
				c.AddDeferred(1, 2)
				c.Sums(now, dst)
			}
		}()
	}
	wg.Wait()
	got := make([]int64, 3) // longer than the series: the extra entry is left alone
	got[2] = 42
	c.Sums(now, got)
	if got[0] != 4000 || got[1] != 8000 || got[2] != 42 {
		t.Fatalf("sums = %v", got)
	}
}

func TestAllocationFree(t *testing.T) {
	now := time.Unix(0, 0)
	c := window.New(time.Second, 10, 2)
	dst := make([]int64, 2)
	n := testing.AllocsPerRun(1000, func() {
		now = now.Add(37 * time.Millisecond)
		c.Add(now, 0, 1)
		c.AddDeferred(1, 1)
		c.Flush(now)
		c.Sums(now, dst)
	})
	if n != 0 {
		t.Fatalf("allocates %v per run", n)
	}
}

func BenchmarkAdd(b *testing.B) {
	c := window.New(10*time.Second, 10, 2)
	b.Run("stamped/serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Add(time.Now(), 0, 1)
		}
	})
	b.Run("stamped/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Add(time.Now(), 0, 1)
			}
		})
	})
	b.Run("deferred/serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.AddDeferred(0, 1)
		}
	})
	b.Run("deferred/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.AddDeferred(0, 1)
			}
		})
	})
}

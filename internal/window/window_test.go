package window_test

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/internal/window"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newCounter(t *testing.T, w time.Duration, buckets, series int, now func() time.Time) *window.Counter {
	t.Helper()
	c, err := window.New(w, buckets, series, now)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		w       time.Duration
		buckets int
		series  int
	}{
		{"zero window", 0, 10, 1},
		{"negative window", -time.Second, 10, 1},
		{"zero buckets", time.Second, 0, 1},
		{"too many buckets", time.Second, window.MaxBuckets + 1, 1},
		{"zero series", time.Second, 10, 0},
		{"too many series", time.Second, 10, window.MaxSeries + 1},
		{"window not a multiple", 10, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := window.New(tt.w, tt.buckets, tt.series, nil)
			if !errors.Is(err, window.ErrInvalidConfig) || c != nil {
				t.Fatalf("New = %v, %v; want ErrInvalidConfig", c, err)
			}
		})
	}
	c := newCounter(t, 10*time.Second, 10, 2, nil)
	if c.Window() != 10*time.Second || c.Series() != 2 {
		t.Fatalf("Window %v Series %d", c.Window(), c.Series())
	}
}

// TestRolling checks each bucket leaves the window exactly when its slot is
// bucket count slots old.
func TestRolling(t *testing.T) {
	clk := &clock{time.Unix(1000, 0)}
	c := newCounter(t, 10*time.Second, 10, 2, clk.now)
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
		{-5 * time.Second, [2]int64{7, 7}, [2]int64{7, 7}},   // clock stepping back counts in the newest bucket
	}
	for i, s := range steps {
		clk.advance(s.advance)
		for series, n := range s.add {
			if n != 0 {
				c.Add(series, n)
			}
		}
		got := make([]int64, 2)
		c.Sums(got)
		if [2]int64(got) != s.want || c.Sum(0) != s.want[0] || c.Sum(1) != s.want[1] {
			t.Fatalf("step %d: sums %v, want %v", i, got, s.want)
		}
	}
}

// TestDeferred: deferred counts are stamped at the next touch, into the
// bucket current then, and AddDeferred reports the pending count.
func TestDeferred(t *testing.T) {
	clk := &clock{time.Unix(0, 0)}
	c := newCounter(t, 4*time.Second, 4, 1, clk.now)
	for i := range 5 {
		if p := c.AddDeferred(0, 1); p != int64(i+1) {
			t.Fatalf("pending = %d, want %d", p, i+1)
		}
	}
	clk.advance(3 * time.Second)
	c.Flush() // stamped at t=3s
	if p := c.AddDeferred(0, 0); p != 0 {
		t.Fatalf("pending after Flush = %d", p)
	}
	clk.advance(3 * time.Second) // t=6s: the t=3s bucket is still in the window
	if got := c.Sum(0); got != 5 {
		t.Fatalf("sum = %d, want 5", got)
	}
	c.AddDeferred(0, 2)
	if got := c.Sum(0); got != 7 {
		t.Fatalf("Sum includes pending: %d, want 7", got)
	}
	clk.advance(4 * time.Second)
	if got := c.Sum(0); got != 0 {
		t.Fatalf("sum after window = %d, want 0", got)
	}
	c.AddDeferred(0, 3)
	c.Reset()
	if got := c.Sum(0); got != 0 {
		t.Fatalf("sum after Reset = %d, want 0", got)
	}
}

// TestSynctestClock runs on time.Now inside a bubble.
func TestSynctestClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCounter(t, time.Second, 10, 1, nil)
		for range 20 {
			c.Add(0, 1)
			time.Sleep(100 * time.Millisecond)
		}
		// 20 adds 100ms apart; the window holds the 10 buckets of the last
		// second, the newest of which is empty.
		if got := c.Sum(0); got != 9 {
			t.Fatalf("sum = %d, want 9", got)
		}
	})
}

func TestConcurrent(t *testing.T) {
	c := newCounter(t, time.Hour, 4, 2, nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Add(0, 1)
				c.AddDeferred(1, 2)
				_ = c.Sum(1)
			}
		}()
	}
	wg.Wait()
	got := make([]int64, 3) // longer than Series: the extra entry is left alone
	got[2] = 42
	c.Sums(got)
	if got[0] != 4000 || got[1] != 8000 || got[2] != 42 {
		t.Fatalf("sums = %v", got)
	}
}

func TestAllocationFree(t *testing.T) {
	clk := &clock{time.Unix(0, 0)}
	c := newCounter(t, time.Second, 10, 2, clk.now)
	dst := make([]int64, 2)
	n := testing.AllocsPerRun(1000, func() {
		clk.advance(37 * time.Millisecond)
		c.Add(0, 1)
		c.AddDeferred(1, 1)
		c.Flush()
		_ = c.Sum(0)
		c.Sums(dst)
	})
	if n != 0 {
		t.Fatalf("allocates %v per run", n)
	}
}

func BenchmarkAdd(b *testing.B) {
	c, _ := window.New(10*time.Second, 10, 2, nil)
	b.Run("stamped/serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Add(0, 1)
		}
	})
	b.Run("stamped/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Add(0, 1)
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

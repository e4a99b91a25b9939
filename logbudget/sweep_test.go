package logbudget

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

func mustNew(next slog.Handler, opts ...Option) *Handler {
	h, err := New(next, opts...)
	if err != nil {
		panic(err)
	}
	return h
}

type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return true }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }

// floodKeys fills a budget with n live keys created 1 ms apart, so their
// intervals end at n different times.
func floodKeys(now *time.Time, h *Handler, n int) {
	l := slog.New(h)
	for i := range n {
		*now = now.Add(time.Millisecond)
		l.Warn("auth failed", "reason", fmt.Sprintf("k%d", i))
	}
}

// TestSweepCostIndependentOfLiveKeys: with 1,000 live keys whose intervals
// end at different times, a record costs the sweep a bounded number of entry
// visits, not one visit per live key. The flood case (many distinct keys)
// is the one the budget exists for.
func TestSweepCostIndependentOfLiveKeys(t *testing.T) {
	const keys = 1000
	now := time.Unix(0, 0)
	h := mustNew(discard{}, WithLimit(1), WithKeyAttr("reason"), WithMaxKeys(4096), WithClock(func() time.Time { return now }))
	floodKeys(&now, h, keys)
	// Move to where the first key's interval has ended, then log one record
	// per millisecond: each ends about one key's interval.
	now = time.Unix(0, 0).Add(time.Minute + time.Millisecond)
	before := h.Visited()
	l := slog.New(h)
	const records = 500
	for range records {
		now = now.Add(time.Millisecond)
		l.Warn("steady", "reason", "same")
	}
	visited := h.Visited() - before
	// Each record ends about one key and looks at the first live one.
	if limit := 3 * records; visited > limit {
		t.Fatalf("sweeps visited %d entries for %d records with %d live keys (> %d): the cost grows with the live keys", visited, records, keys, limit)
	}
}

// TestSweepAfterFlushAndCompaction: entries removed by Flush and popped by
// sweeps leave no live key behind and no summary is lost or doubled.
func TestSweepAfterFlushAndCompaction(t *testing.T) {
	now := time.Unix(0, 0)
	var sums int
	h := mustNew(countSummaries{&sums}, WithLimit(1), WithKeyAttr("reason"), WithMaxKeys(4096), WithClock(func() time.Time { return now }))
	l := slog.New(h)
	for i := range 300 {
		now = now.Add(time.Millisecond)
		l.Warn("m", "reason", fmt.Sprintf("k%d", i))
		l.Warn("m", "reason", fmt.Sprintf("k%d", i)) // suppressed
	}
	h.Flush(context.Background()) // 300 summaries, all keys gone
	for i := range 300 {
		now = now.Add(time.Millisecond)
		l.Warn("m", "reason", fmt.Sprintf("j%d", i))
		l.Warn("m", "reason", fmt.Sprintf("j%d", i))
	}
	now = now.Add(2 * time.Minute)
	l.Warn("tick")
	if sums != 600 {
		t.Fatalf("summaries = %d, want 600", sums)
	}
	h.st.mu.Lock()
	live, queued := len(h.st.keys), len(h.st.queue)-h.st.head
	h.st.mu.Unlock()
	if live != 1 || queued != 1 {
		t.Fatalf("live keys %d, queued %d; want 1 and 1 (the tick)", live, queued)
	}
}

type countSummaries struct{ n *int }

func (c countSummaries) Enabled(context.Context, slog.Level) bool { return true }
func (c countSummaries) Handle(_ context.Context, r slog.Record) error {
	if r.Message == SummaryMessage {
		*c.n++
	}
	return nil
}
func (c countSummaries) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c countSummaries) WithGroup(string) slog.Handler      { return c }

// BenchmarkRecordLiveKeys is the per-record cost of a budget holding one
// live key and 1,000 live keys whose intervals end at different times; the
// two must cost about the same.
func BenchmarkRecordLiveKeys(b *testing.B) {
	for _, keys := range []int{1, 1000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			now := time.Unix(0, 0)
			h := mustNew(discard{}, WithLimit(1), WithKeyAttr("reason"), WithMaxKeys(1<<20), WithClock(func() time.Time { return now }))
			l := slog.New(h)
			// Keys created 60 ms apart: one ends about every 60 ms of clock.
			step := time.Minute / time.Duration(keys)
			for i := range keys {
				now = now.Add(step)
				l.Warn("auth failed", "reason", fmt.Sprintf("k%d", i))
			}
			reasons := make([]string, keys)
			for i := range reasons {
				reasons[i] = fmt.Sprintf("k%d", i)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				// Advance the clock so that keys keep ending and being
				// re-created: the steady state of a flood.
				now = now.Add(step)
				l.Warn("auth failed", "reason", reasons[i%keys])
			}
		})
	}
}

// BenchmarkRecordLiveKeysParallel is BenchmarkRecordLiveKeys with every
// goroutine logging and advancing one shared clock.
func BenchmarkRecordLiveKeysParallel(b *testing.B) {
	const keys = 1000
	var clock atomic.Int64
	step := int64(time.Minute) / keys
	h := mustNew(discard{}, WithLimit(1), WithKeyAttr("reason"), WithMaxKeys(1<<20),
		WithClock(func() time.Time { return time.Unix(0, clock.Add(step)) }))
	reasons := make([]string, keys)
	for i := range reasons {
		reasons[i] = fmt.Sprintf("k%d", i)
	}
	l := slog.New(h)
	for _, r := range reasons {
		l.Warn("auth failed", "reason", r)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			l.Warn("auth failed", "reason", reasons[i%keys])
		}
	})
}

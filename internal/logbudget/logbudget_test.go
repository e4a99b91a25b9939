package logbudget_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blastradius/blastradius/internal/logbudget"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newText(buf *bytes.Buffer) slog.Handler {
	return slog.NewTextHandler(buf, &slog.HandlerOptions{ReplaceAttr: func(g []string, a slog.Attr) slog.Attr {
		if len(g) == 0 && (a.Key == slog.TimeKey || a.Key == "since") {
			return slog.Attr{}
		}
		return a
	}})
}

// TestSummaryNotTaggedWithOtherLoggersAttrs: a summary is the budget's
// record, not the record of whichever derived logger happened to trigger the
// sweep, so it must not carry that logger's attributes or group.
func TestSummaryNotTaggedWithOtherLoggersAttrs(t *testing.T) {
	var buf bytes.Buffer
	clk := &clock{time.Unix(0, 0)}
	root := logbudget.New(newText(&buf), logbudget.Options{Limit: 1, Interval: time.Minute, KeyAttr: "reason", Now: clk.now})
	a := slog.New(root).With("request_id", "A")
	for range 3 {
		a.Warn("auth failed", "reason", "expired")
	}
	clk.t = clk.t.Add(time.Minute)
	slog.New(root).With("request_id", "B").WithGroup("g").Info("other")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=WARN msg="auth failed" request_id=A reason=expired`,
		`level=WARN msg="log budget: records suppressed" message="auth failed" suppressed=2 reason=expired`,
		`level=INFO msg=other request_id=B`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestBudgetPerKeyAndSummaries(t *testing.T) {
	var buf bytes.Buffer
	clk := &clock{time.Unix(0, 0)}
	var suppressed atomic.Int64
	h := logbudget.New(newText(&buf), logbudget.Options{Limit: 2, Interval: time.Minute, KeyAttr: "reason", Now: clk.now,
		OnSuppress: func(context.Context) { suppressed.Add(1) }})
	l := slog.New(h)
	for range 5 {
		l.Warn("failed", "reason", "x")
		l.Warn("failed", "reason", "y")
	}
	l.With("reason", "z").Warn("failed") // bound through WithAttrs
	if n := strings.Count(buf.String(), "\n"); n != 5 {
		t.Fatalf("%d lines, want 5:\n%s", n, buf.String())
	}
	if suppressed.Load() != 6 {
		t.Fatalf("suppressed %d, want 6", suppressed.Load())
	}
	buf.Reset()
	clk.t = clk.t.Add(30 * time.Second)
	l.Warn("failed", "reason", "x") // same interval: suppressed, no summary yet
	if buf.Len() != 0 {
		t.Fatalf("wrote %q inside the interval", buf.String())
	}
	h.Flush(context.Background())
	got := buf.String()
	for _, want := range []string{"suppressed=4 reason=x", "suppressed=3 reason=y"} {
		if !strings.Contains(got, want) {
			t.Errorf("flush output %q lacks %q", got, want)
		}
	}
	if strings.Count(got, "\n") != 2 {
		t.Errorf("flush wrote %q, want 2 summaries", got)
	}
}

func TestBudgetConcurrent(t *testing.T) {
	var n atomic.Int64
	h := logbudget.New(countHandler{&n}, logbudget.Options{Limit: 7, Interval: time.Hour})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				_ = h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0))
			}
		})
	}
	wg.Wait()
	h.Flush(context.Background())
	if n.Load() != 8 { // 7 records and one summary
		t.Fatalf("%d records, want 8", n.Load())
	}
}

type countHandler struct{ n *atomic.Int64 }

func (c countHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (c countHandler) Handle(context.Context, slog.Record) error { c.n.Add(1); return nil }
func (c countHandler) WithAttrs([]slog.Attr) slog.Handler        { return c }
func (c countHandler) WithGroup(string) slog.Handler             { return c }

// TestHandleKnownKeyAllocs: once a key is known, handling its records
// (passed or suppressed) allocates nothing in the budget itself.
func TestHandleKnownKeyAllocs(t *testing.T) {
	var n atomic.Int64
	h := logbudget.New(countHandler{&n}, logbudget.Options{Limit: 1000, Interval: time.Hour, KeyAttr: "reason"})
	r := slog.NewRecord(time.Now(), slog.LevelWarn, "auth failed", 0)
	r.AddAttrs(slog.String("reason", "expired"))
	ctx := context.Background()
	_ = h.Handle(ctx, r)
	if a := testing.AllocsPerRun(500, func() { _ = h.Handle(ctx, r) }); a != 0 { // passed
		t.Errorf("passed record: %v allocs, want 0", a)
	}
	if a := testing.AllocsPerRun(2000, func() { _ = h.Handle(ctx, r) }); a != 0 { // suppressed
		t.Errorf("suppressed record: %v allocs, want 0", a)
	}
	long := slog.NewRecord(time.Now(), slog.LevelWarn, strings.Repeat("m", 300), 0)
	_ = h.Handle(ctx, long)
	h.Flush(ctx)
	if n.Load() != 1000+1+1 {
		t.Errorf("%d records reached next, want 1000 passed, the long one and one summary", n.Load())
	}
}

// TestNoKeyCollidesWithOverflow: an empty message with the key value
// "overflow" is an ordinary key, not the overflow budget.
func TestNoKeyCollidesWithOverflow(t *testing.T) {
	var buf bytes.Buffer
	h := logbudget.New(newText(&buf), logbudget.Options{Limit: 1, KeyAttr: "k"})
	l := slog.New(h)
	l.Info("", "k", "overflow")
	l.Info("", "k", "overflow")
	h.Flush(context.Background())
	if got := buf.String(); strings.Contains(got, "key overflow") || !strings.Contains(got, `message="" suppressed=1 k=overflow`) {
		t.Fatalf("got %q", got)
	}
}

// TestHandleLazy: a record is built only if the budget passes it, and it
// shares the budget with Handle.
func TestHandleLazy(t *testing.T) {
	var n atomic.Int64
	h := logbudget.New(countHandler{&n}, logbudget.Options{Limit: 2, Interval: time.Hour, KeyAttr: "reason"})
	built := 0
	build := func() slog.Record {
		built++
		r := slog.NewRecord(time.Now(), slog.LevelWarn, "auth failed", 0)
		r.AddAttrs(slog.String("reason", "expired"))
		return r
	}
	ctx := context.Background()
	r := build()
	built = 0
	_ = h.Handle(ctx, r) // same key through Handle
	for range 5 {
		_ = h.HandleLazy(ctx, slog.LevelWarn, "auth failed", "expired", build)
	}
	bound := h.WithAttrs([]slog.Attr{slog.String("reason", "expired")}).(*logbudget.Handler)
	_ = bound.HandleLazy(ctx, slog.LevelWarn, "auth failed", "", build) // bound key value
	if built != 1 || n.Load() != 2 {
		t.Fatalf("built %d, passed %d; want 1 and 2", built, n.Load())
	}
	if a := testing.AllocsPerRun(200, func() { _ = h.HandleLazy(ctx, slog.LevelWarn, "auth failed", "expired", build) }); a != 0 {
		t.Errorf("suppressed HandleLazy: %v allocs, want 0", a)
	}
	h.Flush(ctx)
	if n.Load() != 3 {
		t.Fatalf("after Flush %d records, want 3 (one summary)", n.Load())
	}
}

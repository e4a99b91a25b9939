package logbudget_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/logbudget"
)

func mustNew(t testing.TB, next slog.Handler, opts ...logbudget.Option) *logbudget.Handler {
	t.Helper()
	h, err := logbudget.New(next, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSummaryNotTaggedWithOtherLoggersAttrs: a summary is the budget's
// record, not the record of whichever derived logger happened to trigger the
// sweep, so it must not carry that logger's attributes or group.
func TestSummaryNotTaggedWithOtherLoggersAttrs(t *testing.T) {
	var logs logtest.Buffer
	clk := fakeclock.New()
	root := mustNew(t, logs.Handler(), logbudget.WithLimit(1), logbudget.WithInterval(time.Minute), logbudget.WithKeyAttr("reason"), logbudget.WithClock(clk.Now))
	a := slog.New(root).With("request_id", "A")
	for range 3 {
		a.Warn("auth failed", "reason", "expired")
	}
	clk.Advance(time.Minute)
	slog.New(root).With("request_id", "B").WithGroup("g").Info("other")
	lines := logs.Lines()
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
	var logs logtest.Buffer
	clk := fakeclock.New()
	mp := metrictest.New(t)
	h := mustNew(t, logs.Handler(), logbudget.WithLimit(2), logbudget.WithInterval(time.Minute), logbudget.WithKeyAttr("reason"), logbudget.WithClock(clk.Now), logbudget.WithMeterProvider(mp))
	l := slog.New(h)
	for range 5 {
		l.Warn("failed", "reason", "x")
		l.Warn("failed", "reason", "y")
	}
	l.With("reason", "z").Warn("failed") // bound through WithAttrs
	if n := len(logs.Lines()); n != 5 {
		t.Fatalf("%d lines, want 5:\n%s", n, logs.String())
	}
	if n := mp.Total(logbudget.SuppressedMetric); n != 6 {
		t.Fatalf("suppressed %d, want 6", n)
	}
	before := len(logs.String())
	clk.Advance(30 * time.Second)
	l.Warn("failed", "reason", "x") // same interval: suppressed, no summary yet
	if got := logs.String()[before:]; got != "" {
		t.Fatalf("wrote %q inside the interval", got)
	}
	h.Flush(context.Background())
	got := logs.String()[before:]
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
	h := mustNew(t, countHandler{&n}, logbudget.WithLimit(7), logbudget.WithInterval(time.Hour))
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
	h := mustNew(t, countHandler{&n}, logbudget.WithLimit(1000), logbudget.WithInterval(time.Hour), logbudget.WithKeyAttr("reason"))
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
	var logs logtest.Buffer
	h := mustNew(t, logs.Handler(), logbudget.WithLimit(1), logbudget.WithKeyAttr("k"))
	l := slog.New(h)
	l.Info("", "k", "overflow")
	l.Info("", "k", "overflow")
	h.Flush(context.Background())
	if got := logs.String(); strings.Contains(got, "key overflow") || !strings.Contains(got, `message="" suppressed=1 k=overflow`) {
		t.Fatalf("got %q", got)
	}
}

// TestHandleKey: a record is built only if the budget passes it, it shares
// the budget with Handle, and a suppressed record allocates nothing.
func TestHandleKey(t *testing.T) {
	var n atomic.Int64
	h := mustNew(t, countHandler{&n}, logbudget.WithLimit(2), logbudget.WithInterval(time.Hour), logbudget.WithKeyAttr("reason"))
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
	k := h.Key("auth failed", slog.String("reason", "expired"))
	for range 5 {
		_ = h.HandleKey(ctx, k, slog.LevelWarn, build)
	}
	bound := h.WithAttrs([]slog.Attr{slog.String("reason", "expired")}).(*logbudget.Handler)
	_ = bound.HandleKey(ctx, bound.Key("auth failed"), slog.LevelWarn, build) // bound key value
	if built != 1 || n.Load() != 2 {
		t.Fatalf("built %d, passed %d; want 1 and 2", built, n.Load())
	}
	if a := testing.AllocsPerRun(200, func() { _ = h.HandleKey(ctx, k, slog.LevelWarn, build) }); a != 0 {
		t.Errorf("suppressed HandleKey: %v allocs, want 0", a)
	}
	h.Flush(ctx)
	if n.Load() != 3 {
		t.Fatalf("after Flush %d records, want 3 (one summary)", n.Load())
	}
}

// TestFor: a logger whose handler is a budget is that budget; any other
// logger gets a budget of its own over its handler.
func TestFor(t *testing.T) {
	var n atomic.Int64
	shared := mustNew(t, countHandler{&n}, logbudget.WithLimit(1))
	got, err := logbudget.For(slog.New(shared), logbudget.WithLimit(5))
	if err != nil || got != shared {
		t.Fatalf("For(budgeted logger) = %p, %v; want the shared budget %p", got, err, shared)
	}
	own, err := logbudget.For(slog.New(countHandler{&n}), logbudget.WithLimit(5))
	if err != nil || own == shared {
		t.Fatalf("For(plain logger) = %p, %v; want a new budget", own, err)
	}
	if def, err := logbudget.For(nil); err != nil || def == nil {
		t.Fatalf("For(nil) = %v, %v; want a budget over slog.Default()", def, err)
	}
}

// TestInvalidOptions: every invalid option fails New with ErrInvalidConfig,
// naming the option.
func TestInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  logbudget.Option
	}{
		{"WithLimit(0)", logbudget.WithLimit(0)},
		{"WithLimit(-1)", logbudget.WithLimit(-1)},
		{"WithInterval(0s)", logbudget.WithInterval(0)},
		{"WithInterval(-1s)", logbudget.WithInterval(-time.Second)},
		{"WithMaxKeys(0)", logbudget.WithMaxKeys(0)},
	} {
		_, err := logbudget.New(slog.DiscardHandler, tc.opt)
		if !errors.Is(err, logbudget.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig naming the option", tc.name, err)
		}
	}
	if _, err := logbudget.New(nil); !errors.Is(err, logbudget.ErrInvalidConfig) {
		t.Errorf("New(nil): err = %v", err)
	}
	// Nil options and nil clock and provider mean the defaults.
	if _, err := logbudget.New(slog.DiscardHandler, nil, logbudget.WithClock(nil), logbudget.WithMeterProvider(nil)); err != nil {
		t.Errorf("nil options: %v", err)
	}
}

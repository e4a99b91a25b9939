package logbudget_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/logbudget"
)

// record is a handled record reduced to its message and string attributes.
type record struct {
	msg   string
	attrs map[string]string
}

// capture is a slog.Handler that keeps every record it handles.
type capture struct {
	mu   sync.Mutex
	recs *[]record
	pre  []slog.Attr
}

func newCapture() *capture { return &capture{recs: new([]record)} }

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	rec := record{msg: r.Message, attrs: map[string]string{}}
	for _, a := range c.pre {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { rec.attrs[a.Key] = a.Value.String(); return true })
	c.mu.Lock()
	*c.recs = append(*c.recs, rec)
	c.mu.Unlock()
	return nil
}
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	return &capture{recs: c.recs, pre: append(append([]slog.Attr(nil), c.pre...), as...)}
}
func (c *capture) WithGroup(string) slog.Handler { return c }

func (c *capture) all() []record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]record(nil), *c.recs...)
}

// FuzzBudget: whatever the message and key, exactly min(n, limit) records
// pass, the rest are counted as suppressed, and Flush writes one summary
// with the right count.
func FuzzBudget(f *testing.F) {
	f.Add("edge: auth failed", "expired", "other", uint8(10))
	f.Add("", "", "", uint8(0))
	f.Add("", "overflow", "\x00", uint8(7))
	f.Add("a\x00b", "c", "a", uint8(4))
	f.Add(strings.Repeat("m", 300), "\xff", "k", uint8(255))
	f.Fuzz(func(t *testing.T, msg, key, other string, n uint8) {
		const limit = 3
		logs := newCapture()
		m := metrictest.New(t)
		b := mustNew(t, logs, logbudget.WithLimit(limit), logbudget.WithKeyAttr("reason"), logbudget.WithMeterProvider(m))
		l := slog.New(b)
		for range n {
			l.Info(msg, "reason", key)
		}
		if key != other {
			l.With("reason", other).Info(msg) // another key: its own budget
		}
		passed := 0
		for _, r := range logs.all() {
			if r.msg == msg && r.attrs["reason"] == key {
				passed++
			}
		}
		if passed != min(int(n), limit) {
			t.Fatalf("passed %d of %d, want %d", passed, n, min(int(n), limit))
		}
		want := max(int(n)-limit, 0)
		if got := m.Total(logbudget.SuppressedMetric); got != int64(want) {
			t.Fatalf("suppressed %d, want %d", got, want)
		}
		b.Flush(context.Background())
		sums := 0
		for _, r := range logs.all() {
			if r.msg == logbudget.SummaryMessage {
				sums++
				if r.attrs["message"] != msg || r.attrs["reason"] != key || r.attrs["suppressed"] != fmt.Sprint(want) {
					t.Fatalf("summary %+v, want message %q reason %q suppressed %d", r.attrs, msg, key, want)
				}
			}
		}
		if sums != min(want, 1) {
			t.Fatalf("%d summaries, want %d", sums, min(want, 1))
		}
	})
}

// TestDerivedHandlersShareBudget: handlers derived with WithAttrs and
// WithGroup count against the budget they came from.
func TestDerivedHandlersShareBudget(t *testing.T) {
	logs := newCapture()
	b := mustNew(t, logs, logbudget.WithLimit(2))
	l := slog.New(b)
	for i := range 6 {
		switch i % 3 {
		case 0:
			l.Info("same")
		case 1:
			l.With("req", i).Info("same")
		case 2:
			l.WithGroup("g").Info("same")
		}
	}
	if _, ok := b.WithAttrs(nil).(*logbudget.Handler); !ok {
		t.Error("WithAttrs does not return a *Handler")
	}
	passed, summary := 0, ""
	b.Flush(context.Background())
	for _, r := range logs.all() {
		switch r.msg {
		case "same":
			passed++
		case logbudget.SummaryMessage:
			summary = r.attrs["suppressed"]
		}
	}
	if passed != 2 || summary != "4" {
		t.Errorf("passed %d, summary suppressed=%q; want 2 and 4", passed, summary)
	}
}

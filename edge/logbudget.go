package edge

import (
	"context"
	"log/slog"
	"time"

	"github.com/blastradius/blastradius/internal/logbudget"
	"github.com/blastradius/blastradius/internal/telemetry"
)

// SummaryMessage is the message of the summary record a LogBudget writes for
// a key whose interval suppressed records. The record carries the attributes
// "message" (the suppressed records' message), "suppressed" (their count),
// "since" (the interval start) and the key attribute, if one is set.
const SummaryMessage = logbudget.SummaryMessage

// LogBudget is a slog.Handler wrapper that passes at most a limit of records
// per key per interval to the handler it wraps. The key is the record's
// message plus the value of a chosen attribute (for example "reason"), so
// "auth failed, reason=expired" and "auth failed, reason=panic" have budgets
// of their own.
//
// When an interval that suppressed records has ended, the LogBudget writes one
// summary record (SummaryMessage) with the suppressed count. It starts no
// goroutine: the summary is written lazily, by the next record handled after
// the interval ends (whatever its key), or by Flush. Call Flush on shutdown
// so that no suppressed count is lost.
//
// A LogBudget is safe for concurrent use; handlers derived with WithAttrs and
// WithGroup share its budget. At most 1024 distinct keys are tracked per
// interval; records with further keys share one overflow budget.
type LogBudget struct {
	h       *logbudget.Handler
	now     func() time.Time // record timestamps
	keyAttr string
}

// LogBudgetOption configures NewLogBudget.
type LogBudgetOption interface {
	applyBudget(*budgetConfig)
}

type budgetConfig struct {
	common
	o logbudget.Options
}

type budgetOption func(*budgetConfig)

func (o budgetOption) applyBudget(c *budgetConfig) { o(c) }

// WithLogLimit sets the number of records passed per key per interval.
// Default 10.
func WithLogLimit(n int) LogBudgetOption {
	return budgetOption(func(c *budgetConfig) {
		if n <= 0 {
			invalid("log limit %d <= 0", n)
			return
		}
		c.o.Limit = n
	})
}

// WithLogInterval sets the budget interval. Default one minute.
func WithLogInterval(d time.Duration) LogBudgetOption {
	return budgetOption(func(c *budgetConfig) {
		if d <= 0 {
			invalid("log interval %v <= 0", d)
			return
		}
		c.o.Interval = d
	})
}

// WithLogKeyAttr names the attribute whose value joins the message to form
// the budget key, for example "reason". Default none: the message alone.
func WithLogKeyAttr(name string) LogBudgetOption {
	return budgetOption(func(c *budgetConfig) { c.o.KeyAttr = name })
}

// NewLogBudget wraps next in a log budget. The counter
// blastradius.edge.log.suppressed counts the records it suppresses.
func NewLogBudget(next slog.Handler, opts ...LogBudgetOption) *LogBudget {
	var c budgetConfig
	for _, o := range opts {
		if o != nil {
			o.applyBudget(&c)
		}
	}
	now, stampNow := c.now, c.now
	if now == nil {
		now, stampNow = monoNow, time.Now
	}
	c.o.Now = now
	// The suppressed count is an observable counter over an atomic, so a
	// suppressed record (the flood path) costs an atomic add, not a
	// synchronous instrument update. Every budget reports its own count into
	// the one unattributed series; the SDK sums a series' observations
	// across callbacks, so no state is shared between budgets.
	suppressed := telemetry.NewCounts(telemetry.Meter(c.mp, "edge"), "blastradius.edge.log.suppressed",
		"Log records suppressed by log budgets.", "{record}", nil)
	c.o.OnSuppress = func(context.Context) { suppressed.Add(0, 1) }
	return &LogBudget{h: logbudget.New(next, c.o), now: stampNow, keyAttr: c.o.KeyAttr}
}

// Enabled reports whether the wrapped handler handles records at level l.
func (b *LogBudget) Enabled(ctx context.Context, l slog.Level) bool { return b.h.Enabled(ctx, l) }

// Handle passes r to the wrapped handler if its key is within budget. It first
// writes the summaries of any ended interval that suppressed records.
func (b *LogBudget) Handle(ctx context.Context, r slog.Record) error { return b.h.Handle(ctx, r) }

// WithAttrs returns a LogBudget that shares this budget and adds attrs.
func (b *LogBudget) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &LogBudget{h: b.h.WithAttrs(attrs).(*logbudget.Handler), now: b.now, keyAttr: b.keyAttr}
}

// WithGroup returns a LogBudget that shares this budget and opens group name.
func (b *LogBudget) WithGroup(name string) slog.Handler {
	return &LogBudget{h: b.h.WithGroup(name).(*logbudget.Handler), now: b.now, keyAttr: b.keyAttr}
}

// Flush writes a summary for every key that has suppressed records in its
// current interval, even if the interval has not ended, and resets those
// keys.
func (b *LogBudget) Flush(ctx context.Context) { b.h.Flush(ctx) }

// log writes one record through the budget without the cost of
// slog.Logger (no caller lookup), and builds the record (and reads the
// clock for its time) only if the budget passes it. It is the path every
// middleware logs through.
func (b *LogBudget) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if !b.h.Enabled(ctx, level) {
		return
	}
	var kv string
	if b.keyAttr != "" {
		for _, a := range attrs {
			if a.Key == b.keyAttr {
				kv = a.Value.Resolve().String()
				break
			}
		}
	}
	_ = b.h.HandleLazy(ctx, level, msg, kv, func() slog.Record {
		r := slog.NewRecord(b.now(), level, msg, 0)
		r.AddAttrs(attrs...)
		return r
	})
}

// reasonKey is a message and reason that a middleware logs again and
// again, resolved once against its budget.
type reasonKey struct {
	msg, reason string
	k           *logbudget.Key // nil: the budget is keyed by another attribute
}

// key resolves msg and reason against b. When b is keyed by "reason" (or by
// the message alone) the key is looked up once, here, not per record.
func (b *LogBudget) key(msg, reason string) *reasonKey {
	rk := &reasonKey{msg: msg, reason: reason}
	switch b.keyAttr {
	case "":
		rk.k = b.h.Key(msg, "")
	case "reason":
		rk.k = b.h.Key(msg, reason)
	}
	return rk
}

// logReason logs a record with rk's message and "reason" attribute. The
// record, and the attributes add puts in it after the reason, are only
// built if the budget passes it.
func (b *LogBudget) logReason(ctx context.Context, level slog.Level, rk *reasonKey, add func(*slog.Record)) {
	if !b.h.Enabled(ctx, level) {
		return
	}
	build := func() slog.Record {
		r := slog.NewRecord(b.now(), level, rk.msg, 0)
		r.AddAttrs(slog.String("reason", rk.reason))
		add(&r)
		return r
	}
	if rk.k == nil { // a shared budget keyed by another attribute: it must see the record
		_ = b.h.Handle(ctx, build())
		return
	}
	_ = b.h.HandleKeyLazy(ctx, rk.k, level, build)
}

// monoBase anchors monoNow.
var monoBase = time.Now()

// monoNow is the budget's default clock: monoBase advanced by the monotonic
// time since, which costs one clock read where time.Now costs two. Budget
// intervals only need elapsed time; record timestamps still use time.Now.
func monoNow() time.Time { return monoBase.Add(time.Since(monoBase)) }

package logbudget

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/blastradius/blastradius/internal/telemetry"
)

// SummaryMessage is the message of the summary record a Handler writes for a
// key whose interval suppressed records. The record carries the attributes
// "message" (the suppressed records' message), "suppressed" (their count),
// "since" (the interval start) and the key attribute, if one is set.
const SummaryMessage = "log budget: records suppressed"

// OverflowMessage is the message that summary records carry for the records
// counted under the overflow key, once MaxKeys distinct keys are live.
const OverflowMessage = "log budget: key overflow"

// overflowKey is the key that records are counted under once MaxKeys
// distinct keys are live, so arbitrary keys cannot grow memory without
// bound. Keys end in NUL, so no message and value can produce it.
const overflowKey = "\x00overflow"

type entry struct {
	dead       bool // deleted from the map; a Key holding it looks again
	key        string
	start      time.Time
	passed     int
	suppressed int
	msg        string
	keyVal     string
	level      slog.Level
}

type state struct {
	cfg config
	// root is the handler New wrapped. Summaries are written through it, not
	// through a derived handler, so they never carry the attributes or group
	// of whichever logger happened to trigger the sweep.
	root       slog.Handler
	suppressed *telemetry.Counts
	mu         sync.Mutex
	keys       map[string]*entry
	// queue holds the live entries in creation order, which is the order
	// their intervals end in (every interval has the same length), so a
	// sweep pops ended entries off the front and stops at the first live
	// one: its cost is the number of entries it ends, never the number of
	// live keys. Entries Flush removed stay queued, marked dead, until they
	// reach the front. queue[head:] is the live part.
	queue []*entry
	head  int
	next  time.Time // earliest time a sweep may find an ended interval
	// visited counts the entries sweeps have examined, for the test that
	// pins the sweep's cost.
	visited int
}

// Handler is a slog.Handler that passes at most a limit of records per key
// per interval to the handler it wraps. The key is the record's message plus
// the value of the key attribute (WithKeyAttr; for example "reason"), so
// "auth failed, reason=expired" and "auth failed, reason=panic" have budgets
// of their own.
//
// When an interval that suppressed records has ended, the Handler writes one
// summary record (SummaryMessage) with the suppressed count. It starts no
// goroutine: the summary is written lazily, by the next record handled after
// the interval ends (whatever its key), or by Flush. Call Flush on shutdown
// so that no suppressed count is lost.
//
// A Handler is safe for concurrent use; handlers derived with WithAttrs and
// WithGroup share its budget. The zero value is not usable: use New.
type Handler struct {
	next   slog.Handler
	st     *state
	keyVal string // value of the key attribute bound through WithAttrs, if any
	group  bool   // attributes after WithGroup are not top level
}

// New wraps next in a log budget. It returns an error wrapping
// ErrInvalidConfig if an option is invalid. A nil next is invalid.
func New(next slog.Handler, opts ...Option) (*Handler, error) {
	if next == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	c := defaults()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&c); err != nil {
			return nil, err
		}
	}
	if c.now == nil {
		c.now = monoNow
	}
	st := &state{cfg: c, root: next, keys: make(map[string]*entry)}
	// The suppressed count is an observable counter over an atomic, so a
	// suppressed record (the flood path) costs an atomic add. Every budget
	// reports its own count into the one unattributed series; the SDK sums
	// a series' observations across callbacks.
	st.suppressed = telemetry.NewCounts(telemetry.Meter(c.mp, "logbudget"), SuppressedMetric,
		"Log records suppressed by blastradius log budgets.", "{record}", nil)
	return &Handler{next: next, st: st}, nil
}

// SuppressedMetric is the name of the counter of records suppressed by
// every log budget: a user's own, and those the blastradius packages create
// over a logger that has none.
const SuppressedMetric = "blastradius.logbudget.suppressed"

// For returns the budget that l logs through, when l's handler is a
// Handler (a budget the caller built and shares), and otherwise a new budget
// over l's handler with opts. A nil l means slog.Default(). Packages use it
// for their WithLogger options, so one budgeted logger handed to every
// package is one budget and one suppression count.
func For(l *slog.Logger, opts ...Option) (*Handler, error) {
	if l == nil {
		l = slog.Default()
	}
	if h, ok := l.Handler().(*Handler); ok {
		return h, nil
	}
	return New(l.Handler(), opts...)
}

// KeyAttr returns the name of the key attribute, or "" when the key is the
// message alone.
func (h *Handler) KeyAttr() string { return h.st.cfg.keyAttr }

// Enabled reports whether the wrapped handler handles level.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs returns a handler that shares this budget and adds attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	if !h.group && h.st.cfg.keyAttr != "" {
		for _, a := range attrs {
			if a.Key == h.st.cfg.keyAttr {
				c.keyVal = a.Value.Resolve().String()
			}
		}
	}
	return &c
}

// WithGroup returns a handler that shares this budget and opens group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.group = true
	return &c
}

func (h *Handler) keyValue(r slog.Record) string {
	kv := h.keyVal
	if h.st.cfg.keyAttr == "" || h.group {
		return kv
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == h.st.cfg.keyAttr {
			kv = a.Value.Resolve().String()
			return false
		}
		return true
	})
	return kv
}

type summary struct {
	msg, keyVal string
	level       slog.Level
	suppressed  int
	since       time.Time
}

// Handle passes r to the wrapped handler if its key is within budget, and
// first writes summaries for any ended interval that suppressed records.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.admit(ctx, r.Message, h.keyValue(r), r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// admit counts one record against the budget of its key, after writing the
// summaries of any ended interval, and reports whether it may pass.
func (h *Handler) admit(ctx context.Context, msg, kv string, level slog.Level) bool {
	st := h.st
	// The key is built in a stack buffer and looked up without converting
	// it to a string (m[string(b)] does not allocate), so a record of a
	// known key, passed or suppressed, costs no allocation here. Keys end
	// in NUL, so no message and attribute value can produce overflowKey.
	var buf [128]byte
	kb := append(append(append(append(buf[:0], msg...), 0), kv...), 0)
	now := st.cfg.now()

	st.mu.Lock()
	sums := st.sweepLocked(now, nil)
	e, ok := st.keys[string(kb)]
	if !ok {
		e = st.createLocked(string(kb), msg, kv, level, now)
	}
	pass := st.countLocked(e)
	st.mu.Unlock()
	return h.afterAdmit(ctx, sums, pass)
}

// Key is a budget key resolved once, for callers that log the same few
// records again and again, such as a middleware logging one message per
// failure reason. HandleKey with a Key skips building the key and looking
// it up while its entry is live, and builds the record only if the budget
// passes it.
type Key struct {
	st          *state
	msg, keyVal string
	key         string
	e           *entry // guarded by st.mu; nil or dead means look it up
}

// Key returns the Key of records with message msg and attributes attrs: the
// value of the key attribute among attrs joins msg, as Handle would compute
// it. A key attribute that the record gets elsewhere is not seen.
func (h *Handler) Key(msg string, attrs ...slog.Attr) *Key {
	kv := h.keyVal
	if ka := h.st.cfg.keyAttr; ka != "" && !h.group {
		for _, a := range attrs {
			if a.Key == ka {
				kv = a.Value.Resolve().String()
				break
			}
		}
	}
	return &Key{st: h.st, msg: msg, keyVal: kv, key: msg + "\x00" + kv + "\x00"}
}

// HandleKey counts one record of key k against the budget and, only if the
// budget passes it, calls build and hands the record to the wrapped
// handler. build must return a record with k's message and attributes; it
// is not retained. A Key of another budget is handled as Handle(build()).
func (h *Handler) HandleKey(ctx context.Context, k *Key, level slog.Level, build func() slog.Record) error {
	if !h.next.Enabled(ctx, level) {
		return nil
	}
	if k.st != h.st {
		return h.Handle(ctx, build())
	}
	st := h.st
	now := st.cfg.now()
	st.mu.Lock()
	sums := st.sweepLocked(now, nil)
	e := k.e
	if e == nil || e.dead {
		if e = st.keys[k.key]; e == nil {
			e = st.createLocked(k.key, k.msg, k.keyVal, level, now)
		}
		k.e = e
	}
	pass := st.countLocked(e)
	st.mu.Unlock()
	if !h.afterAdmit(ctx, sums, pass) {
		return nil
	}
	return h.next.Handle(ctx, build())
}

// createLocked adds the entry for key, or returns the overflow entry once
// MaxKeys keys are live.
func (st *state) createLocked(key, msg, kv string, level slog.Level, now time.Time) *entry {
	if len(st.keys) >= st.cfg.maxKeys {
		key = overflowKey
		if e := st.keys[key]; e != nil {
			return e
		}
	}
	e := &entry{key: key, start: now, msg: msg, keyVal: kv, level: level}
	if key == overflowKey {
		e.msg, e.keyVal = OverflowMessage, ""
	}
	st.keys[key] = e
	st.queue = append(st.queue, e)
	if st.next.IsZero() {
		st.next = now.Add(st.cfg.interval)
	}
	return e
}

// countLocked counts one record against e and reports whether it passes.
func (st *state) countLocked(e *entry) bool {
	if e.passed < st.cfg.limit {
		e.passed++
		return true
	}
	e.suppressed++
	return false
}

// afterAdmit writes the summaries a sweep collected and reports a
// suppression, outside the lock.
func (h *Handler) afterAdmit(ctx context.Context, sums []summary, pass bool) bool {
	h.writeSummaries(ctx, sums)
	if !pass {
		h.st.suppressed.Add(0, 1)
	}
	return pass
}

// sweepLocked ends every interval that has passed, collecting summaries for
// those that suppressed records and forgetting idle keys. Entries end in
// creation order, so it pops them off the front of the queue and stops at
// the first whose interval is still running. (With a clock that steps back,
// an entry may end a little late: behind an entry created before it.)
func (st *state) sweepLocked(now time.Time, sums []summary) []summary {
	if st.next.IsZero() || now.Before(st.next) {
		return sums
	}
	for st.head < len(st.queue) {
		e := st.queue[st.head]
		st.visited++
		if !e.dead {
			if end := e.start.Add(st.cfg.interval); now.Before(end) {
				st.next = end
				st.compactLocked()
				return sums
			}
			if e.suppressed > 0 {
				sums = append(sums, summary{msg: e.msg, keyVal: e.keyVal, level: e.level, suppressed: e.suppressed, since: e.start})
			}
			e.dead = true
			delete(st.keys, e.key)
		}
		st.queue[st.head] = nil
		st.head++
	}
	st.queue, st.head, st.next = st.queue[:0], 0, time.Time{}
	return sums
}

// compactLocked moves the live part of the queue to the front once the
// popped part is the larger, so the queue's memory stays proportional to the
// live keys.
func (st *state) compactLocked() {
	if st.head < 64 || st.head < len(st.queue)/2 {
		return
	}
	n := copy(st.queue, st.queue[st.head:])
	clear(st.queue[n:])
	st.queue, st.head = st.queue[:n], 0
}

func (h *Handler) writeSummaries(ctx context.Context, sums []summary) {
	for _, s := range sums {
		r := slog.NewRecord(h.st.cfg.now(), s.level, SummaryMessage, 0)
		r.AddAttrs(slog.String("message", s.msg), slog.Int("suppressed", s.suppressed), slog.Time("since", s.since))
		if h.st.cfg.keyAttr != "" && s.keyVal != "" {
			r.AddAttrs(slog.String(h.st.cfg.keyAttr, s.keyVal))
		}
		_ = h.st.root.Handle(ctx, r)
	}
}

// Flush writes a summary for every key that has suppressed records in its
// current interval, even if that interval has not ended, and resets those
// keys. Call it on shutdown so that no suppressed count is lost.
func (h *Handler) Flush(ctx context.Context) {
	st := h.st
	st.mu.Lock()
	var sums []summary
	for k, e := range st.keys {
		if e.suppressed > 0 {
			sums = append(sums, summary{msg: e.msg, keyVal: e.keyVal, level: e.level, suppressed: e.suppressed, since: e.start})
			e.dead = true
			delete(st.keys, k)
		}
	}
	st.mu.Unlock()
	h.writeSummaries(ctx, sums)
}

// monoBase anchors monoNow.
var monoBase = time.Now()

// monoNow is the default budget clock: monoBase advanced by the monotonic
// time since, which costs one clock read where time.Now costs two. Budget
// intervals only need elapsed time.
func monoNow() time.Time { return monoBase.Add(time.Since(monoBase)) }

package logbudget

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// SummaryMessage is the message of the summary record written for a key
// whose interval suppressed records.
const SummaryMessage = "log budget: records suppressed"

// OverflowKey is the key that records are counted under once MaxKeys
// distinct keys are live, so arbitrary keys cannot grow memory without bound.
const OverflowKey = "\x00overflow"

// Options configures a Handler. Zero values take the defaults.
type Options struct {
	// Limit is the number of records passed per key per interval. Default 10.
	Limit int
	// Interval is the budget window. Default 1 minute.
	Interval time.Duration
	// KeyAttr names the attribute whose value joins the message to form the
	// key (for example "reason"). Empty means the message alone.
	KeyAttr string
	// MaxKeys bounds the number of distinct live keys. Default 1024.
	MaxKeys int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// OnSuppress is called (outside the lock) with 1 for every suppressed record.
	OnSuppress func(ctx context.Context)
}

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
	opts Options
	// root is the handler New wrapped. Summaries are written through it, not
	// through a derived handler, so they never carry the attributes or group
	// of whichever logger happened to trigger the sweep.
	root slog.Handler
	mu   sync.Mutex
	keys map[string]*entry
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

// Handler is the log-budget slog.Handler. It is safe for concurrent use, and
// handlers derived with WithAttrs or WithGroup share one budget.
type Handler struct {
	next   slog.Handler
	st     *state
	keyVal string // value of KeyAttr bound through WithAttrs, if any
	group  bool   // attributes after WithGroup are not top level
}

// New wraps next in a log budget.
func New(next slog.Handler, o Options) *Handler {
	if o.Limit <= 0 {
		o.Limit = 10
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{next: next, st: &state{opts: o, root: next, keys: make(map[string]*entry)}}
}

// Enabled reports whether the wrapped handler handles level.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs returns a handler that shares this budget and adds attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	if !h.group && h.st.opts.KeyAttr != "" {
		for _, a := range attrs {
			if a.Key == h.st.opts.KeyAttr {
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
	if h.st.opts.KeyAttr == "" || h.group {
		return kv
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == h.st.opts.KeyAttr {
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

// HandleLazy is Handle for a record that is built only if the budget passes
// it, so a suppressed record costs no record construction. msg and level
// must be the record's; keyVal is the value of its KeyAttr attribute (empty
// means the value bound through WithAttrs, if any). build is not retained.
func (h *Handler) HandleLazy(ctx context.Context, level slog.Level, msg, keyVal string, build func() slog.Record) error {
	if keyVal == "" || h.group {
		keyVal = h.keyVal
	}
	if !h.admit(ctx, msg, keyVal, level) {
		return nil
	}
	return h.next.Handle(ctx, build())
}

// admit counts one record against the budget of its key, after writing the
// summaries of any ended interval, and reports whether it may pass.
func (h *Handler) admit(ctx context.Context, msg, kv string, level slog.Level) bool {
	st := h.st
	// The key is built in a stack buffer and looked up without converting
	// it to a string (m[string(b)] does not allocate), so a record of a
	// known key, passed or suppressed, costs no allocation here. Keys end
	// in NUL, so no message and attribute value can produce OverflowKey.
	var buf [128]byte
	kb := append(append(append(append(buf[:0], msg...), 0), kv...), 0)
	now := st.opts.Now()

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

// Key is a budget key (a message and a key-attribute value) resolved once,
// for callers that log the same few keys again and again, such as a
// middleware logging one message per failure reason. HandleKeyLazy with a
// Key skips building the key and looking it up while its entry is live.
type Key struct {
	st          *state
	msg, keyVal string
	key         string
	e           *entry // guarded by st.mu; nil or dead means look it up
}

// Key returns the Key for msg and keyVal in this budget.
func (h *Handler) Key(msg, keyVal string) *Key {
	return &Key{st: h.st, msg: msg, keyVal: keyVal, key: msg + "\x00" + keyVal + "\x00"}
}

// HandleKeyLazy is HandleLazy for a pre-resolved Key: build is called, and
// the record handled, only if the budget passes it. A Key of another budget,
// or a handler inside a group, falls back to HandleLazy.
func (h *Handler) HandleKeyLazy(ctx context.Context, k *Key, level slog.Level, build func() slog.Record) error {
	if k.st != h.st || h.group {
		return h.HandleLazy(ctx, level, k.msg, k.keyVal, build)
	}
	st := h.st
	now := st.opts.Now()
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
	if len(st.keys) >= st.opts.MaxKeys {
		key = OverflowKey
		if e := st.keys[key]; e != nil {
			return e
		}
	}
	e := &entry{key: key, start: now, msg: msg, keyVal: kv, level: level}
	if key == OverflowKey {
		e.msg, e.keyVal = "log budget: key overflow", ""
	}
	st.keys[key] = e
	st.queue = append(st.queue, e)
	if st.next.IsZero() {
		st.next = now.Add(st.opts.Interval)
	}
	return e
}

// countLocked counts one record against e and reports whether it passes.
func (st *state) countLocked(e *entry) bool {
	if e.passed < st.opts.Limit {
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
	if !pass && h.st.opts.OnSuppress != nil {
		h.st.opts.OnSuppress(ctx)
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
			if end := e.start.Add(st.opts.Interval); now.Before(end) {
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
		r := slog.NewRecord(h.st.opts.Now(), s.level, SummaryMessage, 0)
		r.AddAttrs(slog.String("message", s.msg), slog.Int("suppressed", s.suppressed), slog.Time("since", s.since))
		if h.st.opts.KeyAttr != "" && s.keyVal != "" {
			r.AddAttrs(slog.String(h.st.opts.KeyAttr, s.keyVal))
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

package logtest

import (
	"context"
	"log/slog"
	"sync"
)

// Record is a handled record: its level, message and attributes, each
// resolved to its string form, those added through WithAttrs included.
type Record struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// Records is a slog.Handler that keeps every record it is given, at every
// level, for tests that check levels and attributes. Handlers derived with
// WithAttrs keep into the same list; groups are ignored. It is safe for
// concurrent use, and the zero value is an empty list, ready to use.
type Records struct {
	mu   sync.Mutex
	recs []Record
	root *Records // the Records that keeps the list; nil: this one
	pre  []slog.Attr
}

func (c *Records) list() *Records {
	if c.root != nil {
		return c.root
	}
	return c
}

// Enabled reports true: every level is kept.
func (c *Records) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs returns a handler that adds as to every record it keeps in c's
// list.
func (c *Records) WithAttrs(as []slog.Attr) slog.Handler {
	return &Records{root: c.list(), pre: append(append([]slog.Attr(nil), c.pre...), as...)}
}

// WithGroup returns c: groups are ignored.
func (c *Records) WithGroup(string) slog.Handler { return c }

// Handle keeps r.
func (c *Records) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]string{}
	for _, a := range c.pre {
		attrs[a.Key] = a.Value.Resolve().String()
	}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Resolve().String()
		return true
	})
	l := c.list()
	l.mu.Lock()
	l.recs = append(l.recs, Record{r.Level, r.Message, attrs})
	l.mu.Unlock()
	return nil
}

// All returns the records kept so far, in the order they were handled.
func (c *Records) All() []Record {
	l := c.list()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Record(nil), l.recs...)
}

// Count returns how many records have message msg and attribute key equal
// to val; any attributes if key is "".
func (c *Records) Count(msg, key, val string) int {
	n := 0
	for _, r := range c.All() {
		if r.Msg == msg && (key == "" || r.Attrs[key] == val) {
			n++
		}
	}
	return n
}

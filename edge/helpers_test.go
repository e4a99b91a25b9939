package edge_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// capture is a slog.Handler that keeps every record it is given, with its
// attributes (including those added with WithAttrs) resolved. Groups are
// ignored.
type capture struct {
	mu     sync.Mutex
	recs   []rec
	parent *capture
	pre    []slog.Attr
}

type rec struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (c *capture) root() *capture {
	if c.parent != nil {
		return c.parent
	}
	return c
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	return &capture{parent: c.root(), pre: append(append([]slog.Attr(nil), c.pre...), as...)}
}
func (c *capture) WithGroup(string) slog.Handler { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{}
	for _, a := range c.pre {
		m[a.Key] = a.Value.Resolve().String()
	}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Resolve().String()
		return true
	})
	root := c.root()
	root.mu.Lock()
	root.recs = append(root.recs, rec{r.Level, r.Message, m})
	root.mu.Unlock()
	return nil
}

func (c *capture) all() []rec {
	c = c.root()
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]rec(nil), c.recs...)
}

// count returns the records with message msg whose attribute key equals val
// (any value if key is "").
func (c *capture) count(msg, key, val string) int {
	n := 0
	for _, r := range c.all() {
		if r.msg == msg && (key == "" || r.attrs[key] == val) {
			n++
		}
	}
	return n
}

func contextWithCancel(r *http.Request) (*http.Request, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	return r.WithContext(ctx), cancel
}

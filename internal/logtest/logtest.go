// Package logtest records logs in tests, safe for loggers shared by
// goroutines: a text log without times, read back as a string or as lines
// (Buffer), or the records themselves, with their levels and attributes
// (Records).
package logtest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// Buffer is a text log safe for concurrent use. The zero value is an empty
// log, ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the log.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns the whole log.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the log's records, one a line, or nil for an empty log.
func (b *Buffer) Lines() []string {
	s := b.String()
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Handler returns a slog text handler that writes to b (Info and above), and
// leaves out the record time and a log budget summary's "since", so lines
// can be compared exactly.
func (b *Buffer) Handler() slog.Handler {
	return slog.NewTextHandler(b, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == "since") {
			return slog.Attr{}
		}
		return a
	}})
}

// Logger returns a logger over Handler.
func (b *Buffer) Logger() *slog.Logger { return slog.New(b.Handler()) }

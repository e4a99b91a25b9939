package edge

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
)

// responseWriter records whether the response has started. It implements
// Unwrap for http.ResponseController, and Flush, FlushError and Hijack itself
// so that it sees them.
type responseWriter struct {
	http.ResponseWriter
	started bool
}

func (w *responseWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.started = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps net/http's sendfile path (io.Copy to the writer) working
// through the wrapper.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	w.started = true
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// writerOnly hides every method but Write, so io.Copy cannot recurse into
// ReadFrom.
type writerOnly struct{ io.Writer }

// Unwrap returns the wrapped ResponseWriter, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError flushes through http.ResponseController, as it prefers.
func (w *responseWriter) FlushError() error {
	w.started = true
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker when the wrapped writer supports it.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.started = true
	}
	return c, rw, err
}

// stackValue is a slog.LogValuer that captures the goroutine's stack only
// when a handler resolves it. It is logged from a deferred recover, while the
// panicking frames are still on the stack, so a record that the log budget
// suppresses never pays for a stack trace.
type stackValue struct{ live atomic.Bool }

func (s *stackValue) LogValue() slog.Value {
	if !s.live.Load() {
		return slog.StringValue("unavailable (resolved after the recover returned)")
	}
	st := string(debug.Stack())
	// Drop the frames of the logging itself: keep the goroutine header and
	// everything from the panic on.
	if i := strings.Index(st, "\npanic("); i >= 0 {
		if j := strings.IndexByte(st, '\n'); j >= 0 && j < i {
			st = st[:j] + st[i:]
		}
	}
	return slog.StringValue(st)
}

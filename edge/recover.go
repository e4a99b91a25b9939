package edge

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/blastradius/blastradius/internal/telemetry"
	"go.opentelemetry.io/otel/metric"
)

// RecoverOption configures Recover; only the shared Options (WithLogger,
// WithMeterProvider) are RecoverOptions. A nil RecoverOption is skipped.
type RecoverOption interface {
	applyRecover(*recoverConfig)
}

type recoverConfig struct {
	common
}

// Recover returns middleware that turns a panic in the next handler into a
// 500 with the generic body "Internal Server Error" and no stack trace. The
// panic is counted in blastradius.edge.panics and logged at Error with its
// stack, through a log budget; the stack is only captured for records the
// budget passes.
//
// If the response has already started (a header or body byte was written, or
// it was flushed or hijacked), nothing more is written: Recover re-panics with
// http.ErrAbortHandler so that net/http aborts the response (the client sees
// a truncated response instead of a complete-looking one) without logging a
// second stack. A panic with http.ErrAbortHandler itself is re-panicked
// untouched and not counted.
//
// Recover works standalone or in a Chain, where it belongs first (outermost).
// It panics at construction if an option is invalid (see ErrInvalidConfig).
func Recover(opts ...RecoverOption) Middleware {
	var c recoverConfig
	for _, o := range opts {
		if o != nil {
			o.applyRecover(&c)
		}
	}
	rc := &recoverer{logKey: newLogKey(c.budget(), "edge: panic recovered", "")}
	rc.panics = telemetry.Counter(telemetry.Meter(c.mp, "edge"), "blastradius.edge.panics",
		"Handler panics recovered by edge.Recover.", "{panic}")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := &responseWriter{ResponseWriter: w}
			defer func() {
				if v := recover(); v != nil {
					rc.handle(rw, r, v)
				}
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

type recoverer struct {
	logKey *logKey
	panics metric.Int64Counter
}

// handle runs inside the deferred recover, so the panicking frames are still
// on the stack when the log record is resolved.
func (rc *recoverer) handle(w *responseWriter, r *http.Request, v any) {
	if v == http.ErrAbortHandler {
		panic(v)
	}
	if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		panic(v)
	}
	ctx := r.Context()
	rc.panics.Add(ctx, 1)
	if span := telemetry.Recording(ctx); span != nil {
		telemetry.RecordPanic(span, v)
	}
	var st *stackValue
	rc.logKey.log(ctx, slog.LevelError, func(rec *slog.Record) {
		st = &stackValue{}
		st.live.Store(true)
		rec.AddAttrs(slog.Any("panic", v), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Bool("response_started", w.started), slog.Any("stack", st))
	})
	if st != nil {
		st.live.Store(false)
	}
	if w.started {
		panic(http.ErrAbortHandler)
	}
	h := w.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Etag", "Last-Modified", "Content-Disposition"} {
		delete(h, k)
	}
	http.Error(w.ResponseWriter, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}

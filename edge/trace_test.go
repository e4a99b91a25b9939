package edge_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"golang.org/x/time/rate"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/spantest"
)

// serve runs h for a request whose context carries a recording span named
// "server", as otelhttp's handler would start it, and returns the ended
// span and the response code.
func serve(t *testing.T, h http.Handler, auth string) (map[string]any, []string, *spantest.Recorder, int) {
	t.Helper()
	rec := spantest.New(t)
	ctx, span := rec.Start(context.Background(), "server")
	r := httptest.NewRequest("GET", "/api/orders", nil).WithContext(ctx)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	func() {
		defer func() { _ = recover() }() // a re-panic of Recover
		h.ServeHTTP(w, r)
	}()
	span.End()
	s := rec.Span("server")
	return spantest.Attrs(s.Attributes()), spantest.Names(s), rec, w.Code
}

func TestAuthRecordsOutcomeOnTheSpan(t *testing.T) {
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
	tests := []struct {
		name     string
		opts     []edge.AuthOption
		auth     string
		want     map[string]any
		wantCode int
	}{
		{"valid", nil, "Bearer v2.ada", map[string]any{"blastradius.edge.auth.outcome": "ok"}, 200},
		{"old version", nil, "Bearer v1:ada",
			map[string]any{"blastradius.edge.auth.outcome": "anonymous", "blastradius.edge.auth.reason": "unsupported_version"}, 200},
		{"missing, required", []edge.AuthOption{edge.WithRequired()}, "",
			map[string]any{"blastradius.edge.auth.outcome": "rejected", "blastradius.edge.auth.reason": "missing"}, 401},
		{"verify panics", nil, "Bearer crash.now",
			map[string]any{"blastradius.edge.auth.outcome": "anonymous", "blastradius.edge.auth.reason": "panic"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := edge.Auth(floodVerify, append(tt.opts, quiet)...)(noop)
			attrs, events, rec, code := serve(t, h, tt.auth)
			if code != tt.wantCode || !reflect.DeepEqual(attrs, tt.want) {
				t.Fatalf("code %d, span attributes %v; want %d, %v", code, attrs, tt.wantCode, tt.want)
			}
			if tt.want["blastradius.edge.auth.reason"] != "panic" {
				if len(events) != 0 {
					t.Fatalf("events %v, want none", events)
				}
				return
			}
			ex := spantest.Events(rec.Span("server"), "exception")
			want := []map[string]any{{"exception.type": "string", "exception.message": "token parser: index out of range"}}
			if !reflect.DeepEqual(ex, want) {
				t.Fatalf("exception events %v, want %v", ex, want)
			}
		})
	}
}

func TestRecoverRecordsTheException(t *testing.T) {
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
	long := strings.Repeat("é", 200) // 400 bytes: cut to 256 at a rune boundary
	tests := []struct {
		name string
		h    http.HandlerFunc
		want []map[string]any
	}{
		{"string", func(http.ResponseWriter, *http.Request) { panic("boom") },
			[]map[string]any{{"exception.type": "string", "exception.message": "boom"}}},
		{"error, after the response started", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(200)
			panic(errors.New("boom"))
		}, []map[string]any{{"exception.type": "*errors.errorString", "exception.message": "boom"}}},
		{"long value", func(http.ResponseWriter, *http.Request) { panic(long) },
			[]map[string]any{{"exception.type": "string", "exception.message": long[:256]}}},
		{"abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, rec, _ := serve(t, edge.Recover(quiet)(tt.h), "")
			if got := spantest.Events(rec.Span("server"), "exception"); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("exception events %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTraceNamesAreSemconv pins the names taken from the OpenTelemetry
// semantic conventions.
func TestTraceNamesAreSemconv(t *testing.T) {
	if semconv.ExceptionTypeKey != "exception.type" || semconv.ExceptionMessageKey != "exception.message" {
		t.Fatal("exception attribute keys differ from semconv")
	}
}

func TestShedRecordsRefusals(t *testing.T) {
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
	frozen := func() time.Time { return time.Unix(1_700_000_000, 0) }
	t.Run("rate", func(t *testing.T) {
		h := edge.Shed(edge.WithRate(rate.Every(3*time.Second), 1), edge.WithClock(frozen), quiet)(noop)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) // takes the token
		_, _, rec, code := serve(t, h, "")
		got := spantest.Events(rec.Span("server"), "blastradius.edge.shed")
		want := []map[string]any{{"reason": "rate", "retry_after": int64(3)}}
		if code != 429 || !reflect.DeepEqual(got, want) {
			t.Fatalf("code %d, events %v; want 429, %v", code, got, want)
		}
	})
	t.Run("admitted", func(t *testing.T) {
		h := edge.Shed(edge.WithRate(rate.Every(time.Second), 1), edge.WithMaxInFlight(1), edge.WithClock(frozen), quiet)(noop)
		if _, events, _, code := serve(t, h, ""); code != 200 || len(events) != 0 {
			t.Fatalf("code %d, events %v; want 200 and none", code, events)
		}
	})
}

// TestShedRecordsQueueing holds the only slot with one request and sends a
// traced one into the queue, which gets the slot after 200ms or waits out
// its 500ms; in a synctest bubble, so the waits are exact.
func TestShedRecordsQueueing(t *testing.T) {
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
	tests := []struct {
		name    string
		release time.Duration // when the slot is freed; 0: never
		code    int
		want    []string
		queued  map[string]any
		shed    []map[string]any
	}{
		{"slot freed", 200 * time.Millisecond, 200, []string{"blastradius.edge.shed.queued"},
			map[string]any{"wait": 0.2}, nil},
		{"queue timeout", 0, 503, []string{"blastradius.edge.shed.queued", "blastradius.edge.shed"},
			map[string]any{"wait": 0.5}, []map[string]any{{"reason": "queue_timeout", "retry_after": int64(2)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hold := make(chan struct{})
				h := edge.Shed(edge.WithMaxInFlight(1, edge.WithQueue(1, 500*time.Millisecond), edge.WithRetryAfter(2*time.Second)), quiet)(
					http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if r.URL.Path == "/hold" {
							<-hold
						}
					}))
				var wg sync.WaitGroup
				wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/hold", nil)) })
				synctest.Wait()
				if tt.release > 0 {
					wg.Go(func() {
						time.Sleep(tt.release)
						close(hold)
					})
				}
				_, events, rec, code := serve(t, h, "")
				if tt.release == 0 {
					close(hold)
				}
				wg.Wait()
				s := rec.Span("server")
				queued := spantest.Events(s, "blastradius.edge.shed.queued")
				if code != tt.code || !reflect.DeepEqual(events, tt.want) || len(queued) != 1 || !reflect.DeepEqual(queued[0], tt.queued) {
					t.Fatalf("code %d, events %v, queued %v; want %d, %v, %v", code, events, queued, tt.code, tt.want, tt.queued)
				}
				if got := spantest.Events(s, "blastradius.edge.shed"); !reflect.DeepEqual(got, tt.shed) {
					t.Fatalf("shed events %v, want %v", got, tt.shed)
				}
			})
		})
	}
}

// TestNotRecordingAllocatesNothing: under a sampled-out span, the hot
// paths allocate what they do with no span at all (TestAuthValidAllocs,
// TestShedAdmittedAllocs, TestRefusalAllocs).
func TestNotRecordingAllocatesNothing(t *testing.T) {
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
	frozen := func() time.Time { return time.Unix(1_700_000_000, 0) }
	tests := []struct {
		name string
		h    http.Handler
		auth string
		want float64
	}{
		{"Auth valid", edge.Auth(floodVerify, quiet)(noop), "Bearer v2.ada", 2},
		{"Auth required, bad token", edge.Auth(floodVerify, edge.WithRequired(), quiet)(noop), "Bearer v1:ada", 1},
		{"Shed admitted", edge.Shed(edge.WithMaxInFlight(8), quiet)(noop), "", 0},
		{"Shed rate", edge.Shed(edge.WithRate(rate.Every(30*time.Second), 1), edge.WithClock(frozen), quiet)(noop), "", 1},
		{"Recover", edge.Recover(quiet)(noop), "", 1}, // Recover's responseWriter
	}
	for _, tt := range tests {
		r := benchRequest(tt.auth).WithContext(spantest.NotRecording(context.Background()))
		w := &nopWriter{h: http.Header{}}
		if got := testing.AllocsPerRun(1000, func() { tt.h.ServeHTTP(w, r) }); got != tt.want {
			t.Errorf("%s: %v allocs, want %v", tt.name, got, tt.want)
		}
	}
}

// BenchmarkTrace prices edge's trace recording: each case untraced, under a
// sampled-out span and under a recording one, interleaved (see
// spantest.Bench), with the ratios to untraced.
func BenchmarkTrace(b *testing.B) {
	quiet := edge.WithLogger(slog.New(slog.DiscardHandler))
	frozen := func() time.Time { return time.Unix(1_700_000_000, 0) }
	limited := edge.Shed(edge.WithRate(rate.Every(30*time.Second), 1), edge.WithClock(frozen), quiet)(noop)
	limited.ServeHTTP(&nopWriter{h: http.Header{}}, benchRequest("")) // takes the only token
	for _, c := range []struct {
		name, auth string
		h          http.Handler
	}{
		{"Auth/valid", "Bearer v2.ada", edge.Auth(floodVerify, quiet)(noop)},
		{"Auth/bad-token", "Bearer v1:ada", edge.Auth(floodVerify, quiet)(noop)},
		{"Shed/admitted", "", edge.Shed(edge.WithMaxInFlight(8), quiet)(noop)},
		{"Shed/rate-refused", "", limited},
	} {
		b.Run(c.name, func(b *testing.B) {
			spantest.Bench(b, func(ctx context.Context) func() {
				r, w := benchRequest(c.auth).WithContext(ctx), &nopWriter{h: http.Header{}}
				return func() { c.h.ServeHTTP(w, r) }
			})
		})
	}
}

package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/internal/metrictest"
)

// TestDefaultClassifier pins the one rule: an error is a Failure unless the
// caller's ctx was canceled (the caller went away), whatever wraps it; a
// deadline, the caller's or the dependency's, is a Failure.
func TestDefaultClassifier(t *testing.T) {
	errLeft := errors.New("user left")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	withCause, cancelCause := context.WithCancelCause(context.Background())
	cancelCause(errLeft)
	canceledByDeadline, cancelDeadline := context.WithCancelCause(context.Background())
	cancelDeadline(context.DeadlineExceeded)
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancelExpired()
	errSlow := errors.New("too slow")
	expiredCause, cancelExpiredCause := context.WithDeadlineCause(context.Background(), time.Unix(0, 0), errSlow)
	defer cancelExpiredCause()
	live := context.Background()
	netTimeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: "http://svc.test/", Err: err} }
	legacyCanceled := errors.New("net/http: request canceled") // wraps no context error

	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want breaker.Outcome
	}{
		{"plain error", live, errBoom, breaker.Failure},
		{"caller canceled, Canceled", canceled, context.Canceled, breaker.Excluded},
		{"caller canceled, wrapped Canceled", canceled, fmt.Errorf("get: %w", context.Canceled), breaker.Excluded},
		{"caller canceled, url.Error", canceled, urlErr(context.Canceled), breaker.Excluded},
		{"caller canceled, error wrapping no context error", canceled, urlErr(legacyCanceled), breaker.Excluded},
		{"caller canceled with a cause, the cause", withCause, urlErr(errLeft), breaker.Excluded},
		{"caller canceled with DeadlineExceeded as cause", canceledByDeadline, context.DeadlineExceeded, breaker.Failure},
		{"caller deadline, DeadlineExceeded", expired, context.DeadlineExceeded, breaker.Failure},
		{"caller deadline, wrapped DeadlineExceeded", expired, urlErr(fmt.Errorf("read: %w", context.DeadlineExceeded)), breaker.Failure},
		{"caller deadline, error wrapping no context error", expired, urlErr(legacyCanceled), breaker.Failure},
		{"caller deadline with a cause, the cause", expiredCause, urlErr(errSlow), breaker.Failure},
		{"caller deadline, net timeout", expired, urlErr(netTimeout), breaker.Failure},
		{"live ctx, net timeout", live, urlErr(netTimeout), breaker.Failure},
		{"live ctx, DeadlineExceeded", live, context.DeadlineExceeded, breaker.Failure},
		{"live ctx, the dependency's own Canceled", live, fmt.Errorf("rpc: %w", context.Canceled), breaker.Failure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := breaker.DefaultClassifier(tt.ctx, tt.err); got != tt.want {
				t.Fatalf("DefaultClassifier = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDoHungDependencyOpens: fn hangs until the caller's deadline; 20 such
// calls are 20 failures and open a breaker with a threshold of 20, while 20
// calls whose caller cancels are excluded and leave it closed.
func TestDoHungDependencyOpens(t *testing.T) {
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want string
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Second)
		}, "failure"},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(time.Second, cancel)
			return ctx, cancel
		}, "excluded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reader := metrictest.New(t)
				b := mustNew(t, breaker.WithConsecutiveFailures(20), breaker.WithLogger(slog.New(slog.DiscardHandler)),
					breaker.WithMeterProvider(reader))
				for range 20 {
					ctx, cancel := tc.ctx()
					_ = b.Do(ctx, hang)
					cancel()
				}
				if got := callCounts(reader); got[tc.want] != 20 {
					t.Fatalf("outcomes %v, want 20 %s", got, tc.want)
				}
				want := breaker.Closed
				if tc.want == "failure" {
					want = breaker.Open
				}
				wantState(t, b, want)
			})
		})
	}
}

// hungServer is a loopback server whose handler answers 200 only once the
// test ends: until then it waits for the client to give up. arrived
// receives one value per request that reached the handler.
func hungServer(t *testing.T) (srv *httptest.Server, arrived <-chan struct{}) {
	release := make(chan struct{})
	in := make(chan struct{}, 64)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case in <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv, in
}

// TestTransportHungDependency: through http.Client over loopback, 20
// requests that time out against a hung server (http.Client.Timeout, a ctx
// deadline, or both) are 20 failures and open a breaker with a threshold
// of 20; 20 requests the caller cancels once the server has them (ctx
// cancel, with or without a cause and with or without Client.Timeout, or
// the deprecated Request.Cancel) are 20 exclusions and leave it closed.
func TestTransportHungDependency(t *testing.T) {
	const timeout = 20 * time.Millisecond
	for _, tc := range []struct {
		name          string
		clientTimeout time.Duration
		// prepare returns the request to send and a func that gives up
		// on it, or nil to let it time out.
		prepare func(req *http.Request) (*http.Request, func())
		want    string
	}{
		{"client timeout", timeout, nil, "failure"},
		{"ctx deadline", 0, func(req *http.Request) (*http.Request, func()) {
			ctx, cancel := context.WithTimeout(req.Context(), timeout)
			t.Cleanup(cancel)
			return req.WithContext(ctx), nil
		}, "failure"},
		{"ctx deadline under client timeout", time.Minute, func(req *http.Request) (*http.Request, func()) {
			ctx, cancel := context.WithTimeout(req.Context(), timeout)
			t.Cleanup(cancel)
			return req.WithContext(ctx), nil
		}, "failure"},
		{"ctx cancel", 0, func(req *http.Request) (*http.Request, func()) {
			ctx, cancel := context.WithCancel(req.Context())
			return req.WithContext(ctx), cancel
		}, "excluded"},
		{"ctx cancel under client timeout", time.Minute, func(req *http.Request) (*http.Request, func()) {
			ctx, cancel := context.WithCancel(req.Context())
			return req.WithContext(ctx), cancel
		}, "excluded"},
		{"ctx cancel with a cause", time.Minute, func(req *http.Request) (*http.Request, func()) {
			ctx, cancel := context.WithCancelCause(req.Context())
			return req.WithContext(ctx), func() { cancel(errors.New("user left")) }
		}, "excluded"},
		{"Request.Cancel", 0, func(req *http.Request) (*http.Request, func()) {
			c := make(chan struct{})
			//lint:ignore SA1019 the deprecated path must be classified too
			req.Cancel = c
			return req, func() { close(c) }
		}, "excluded"},
		{"Request.Cancel under client timeout", time.Minute, func(req *http.Request) (*http.Request, func()) {
			c := make(chan struct{})
			//lint:ignore SA1019 the deprecated path must be classified too
			req.Cancel = c
			return req, func() { close(c) }
		}, "excluded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, arrived := hungServer(t)
			base := &http.Transport{}
			t.Cleanup(base.CloseIdleConnections)
			reader := metrictest.New(t)
			tr := mustTransport(t, base, breaker.WithConsecutiveFailures(20), breaker.WithLogger(slog.New(slog.DiscardHandler)),
				breaker.WithMeterProvider(reader))
			client := &http.Client{Transport: tr, Timeout: tc.clientTimeout}
			for i := range 20 {
				// The parent deadline only bounds a broken run; a request
				// that reaches it counts as a failure and fails the test.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
				var giveUp func()
				if tc.prepare != nil {
					req, giveUp = tc.prepare(req)
				}
				done := make(chan struct{})
				if giveUp != nil {
					go func() {
						select {
						case <-arrived:
							giveUp()
						case <-done:
						}
					}()
				}
				resp, err := client.Do(req)
				close(done)
				cancel()
				if err == nil {
					_ = resp.Body.Close()
					t.Fatalf("request %d: %v, want an error", i, resp.Status)
				}
				if errors.Is(err, breaker.ErrOpen) {
					t.Fatalf("request %d rejected: the breaker opened early (%v)", i, callCounts(reader))
				}
			}
			if got := callCounts(reader); got[tc.want] != 20 {
				t.Fatalf("outcomes %v, want 20 %s", got, tc.want)
			}
			b := tr.Breaker(srv.Listener.Addr().String())
			want := breaker.Closed
			if tc.want == "failure" {
				want = breaker.Open
			}
			wantState(t, b, want)
		})
	}
}

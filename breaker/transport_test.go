package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/breaker"
)

// body is a response or request body that records whether it was read to
// the end and closed.
type body struct {
	r      io.Reader
	eof    bool
	closed bool
}

func newBody(s string) *body { return &body{r: strings.NewReader(s)} }

func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *body) Close() error { b.closed = true; return nil }

// fakeBase is an in-memory RoundTripper: respond decides each answer.
type fakeBase struct {
	mu      sync.Mutex
	bodies  []string // request bodies seen
	at      []time.Time
	resps   []*body
	respond func(n int) (status int, header http.Header, err error)
}

func (f *fakeBase) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var reqBody string
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		reqBody = string(b)
	}
	f.bodies = append(f.bodies, reqBody)
	f.at = append(f.at, time.Now())
	status, h, err := f.respond(len(f.bodies))
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = http.Header{}
	}
	rb := newBody(strings.Repeat("x", 100))
	f.resps = append(f.resps, rb)
	return &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header: h, Body: rb, Request: r}, nil
}

func (f *fakeBase) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.bodies)
}

func always(status int) func(int) (int, http.Header, error) {
	return func(int) (int, http.Header, error) { return status, nil, nil }
}

// failFirst fails the first n attempts with status, then answers 200.
func failFirst(n, status int, h http.Header) func(int) (int, http.Header, error) {
	return func(i int) (int, http.Header, error) {
		if i <= n {
			return status, h, nil
		}
		return http.StatusOK, nil, nil
	}
}

func fastRetries(t *testing.T, n int) []breaker.TransportOption {
	return []breaker.TransportOption{breaker.WithRetries(n, generous(t), breaker.WithBackoff(time.Millisecond, time.Millisecond),
		breaker.WithJitter(0)), breaker.WithConsecutiveFailures(1000)}
}

func mustTransport(t testing.TB, base http.RoundTripper, opts ...breaker.TransportOption) *breaker.Transport {
	t.Helper()
	tr, err := breaker.NewTransport(base, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestTransportRetriesIdempotentOnly: with a base that always answers 503
// and 3 retries, idempotent and replayable requests are sent 4 times, the
// others once; the caller gets the last 503 response, and every earlier
// response body was drained and closed.
func TestTransportRetriesIdempotentOnly(t *testing.T) {
	tests := []struct {
		name   string
		method string
		body   bool
		noGet  bool // drop GetBody
		key    string
		want   int
	}{
		{"GET", http.MethodGet, false, false, "", 4},
		{"HEAD", http.MethodHead, false, false, "", 4},
		{"OPTIONS", http.MethodOptions, false, false, "", 4},
		{"PUT with body", http.MethodPut, true, false, "", 4},
		{"DELETE", http.MethodDelete, false, false, "", 4},
		{"POST", http.MethodPost, true, false, "", 1},
		{"PATCH", http.MethodPatch, true, false, "", 1},
		{"POST with Idempotency-Key", http.MethodPost, true, false, "Idempotency-Key", 4},
		{"POST with X-Idempotency-Key", http.MethodPost, true, false, "X-Idempotency-Key", 4},
		{"PUT without GetBody", http.MethodPut, true, true, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &fakeBase{respond: always(http.StatusServiceUnavailable)}
				tr := mustTransport(t, base, fastRetries(t, 3)...)
				var rb io.Reader
				if tt.body {
					rb = strings.NewReader("payload")
				}
				req, _ := http.NewRequest(tt.method, "http://svc.test/x", rb)
				if tt.noGet {
					req.GetBody = nil
				}
				if tt.key != "" {
					req.Header.Set(tt.key, "k1")
				}
				resp, err := tr.RoundTrip(req)
				if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("RoundTrip = %v, %v; want the 503 response", resp, err)
				}
				if got := base.attempts(); got != tt.want {
					t.Fatalf("attempts = %d, want %d", got, tt.want)
				}
				for i, b := range base.resps[:len(base.resps)-1] {
					if !b.eof || !b.closed {
						t.Fatalf("response %d: drained %v closed %v", i, b.eof, b.closed)
					}
				}
				if last := base.resps[len(base.resps)-1]; last.closed || resp.Body != io.ReadCloser(last) {
					t.Fatal("the returned response's body was closed or replaced")
				}
				if tt.body {
					for i, b := range base.bodies {
						if b != "payload" {
							t.Fatalf("attempt %d body %q", i, b)
						}
					}
				}
			})
		})
	}
}

// TestTransportBodyReplay: each retry sends the whole body again.
func TestTransportBodyReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeBase{respond: failFirst(2, http.StatusBadGateway, nil)}
		tr := mustTransport(t, base, fastRetries(t, 3)...)
		req, _ := http.NewRequest(http.MethodPut, "http://svc.test/doc", strings.NewReader("hello, world"))
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("RoundTrip = %v, %v", resp, err)
		}
		if got, want := fmt.Sprint(base.bodies), "[hello, world hello, world hello, world]"; got != want {
			t.Fatalf("bodies %s, want %s", got, want)
		}
	})
}

// TestTransportFailureStatuses: 5xx, 429 and transport errors are failures
// and retried; other statuses are not.
func TestTransportFailureStatuses(t *testing.T) {
	errNet := errors.New("connection refused")
	tests := []struct {
		status int
		err    error
		want   int
	}{
		{500, nil, 2}, {502, nil, 2}, {503, nil, 2}, {504, nil, 2}, {429, nil, 2},
		{0, errNet, 2}, {200, nil, 1}, {404, nil, 1}, {400, nil, 1}, {409, nil, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, tt.err), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &fakeBase{respond: func(int) (int, http.Header, error) { return tt.status, nil, tt.err }}
				tr := mustTransport(t, base, fastRetries(t, 1)...)
				req, _ := http.NewRequest(http.MethodGet, "http://svc.test/", nil)
				resp, err := tr.RoundTrip(req)
				if got := base.attempts(); got != tt.want {
					t.Fatalf("attempts = %d, want %d", got, tt.want)
				}
				if tt.err != nil {
					var re *breaker.RetryError
					if resp != nil || !errors.As(err, &re) || !errors.Is(err, errNet) || re.Attempts != 2 {
						t.Fatalf("RoundTrip = %v, %v", resp, err)
					}
				} else if err != nil || resp.StatusCode != tt.status {
					t.Fatalf("RoundTrip = %v, %v", resp, err)
				}
			})
		})
	}
}

// TestTransportRetryAfter: on 429 and 503 the wait before the retry is the
// larger of the backoff (100ms here) and Retry-After, capped.
func TestTransportRetryAfter(t *testing.T) {
	date := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name   string
		status int
		value  func() string
		cap    time.Duration
		want   time.Duration
	}{
		{"seconds", 503, func() string { return "1" }, 10 * time.Second, time.Second},
		{"seconds on 429", 429, func() string { return "2" }, 10 * time.Second, 2 * time.Second},
		{"capped", 503, func() string { return "30" }, 2 * time.Second, 2 * time.Second},
		{"date", 503, func() string { return date(3 * time.Second) }, 10 * time.Second, 3 * time.Second},
		{"capped date", 429, func() string { return date(time.Hour) }, 5 * time.Second, 5 * time.Second},
		{"past date", 503, func() string { return date(-time.Hour) }, 10 * time.Second, 100 * time.Millisecond},
		{"below backoff", 503, func() string { return "0" }, 10 * time.Second, 100 * time.Millisecond},
		{"malformed", 503, func() string { return "soon" }, 10 * time.Second, 100 * time.Millisecond},
		{"ignored on 500", 500, func() string { return "5" }, 10 * time.Second, 100 * time.Millisecond},
		{"cap 0 ignores it", 503, func() string { return "5" }, 0, 100 * time.Millisecond},
		// Values past 32 bits, past time.Duration and past uint64 are capped,
		// never wrapped or ignored; negative and garbage values are ignored.
		{"2^32 seconds capped", 503, func() string { return "4294967296" }, 2 * time.Second, 2 * time.Second},
		{"1e11 seconds capped", 429, func() string { return "99999999999" }, 2 * time.Second, 2 * time.Second},
		{"past Duration capped", 503, func() string { return "9223372037" }, 2 * time.Second, 2 * time.Second},
		{"max uint64 capped", 503, func() string { return "18446744073709551615" }, 2 * time.Second, 2 * time.Second},
		{"past uint64 capped", 503, func() string { return "99999999999999999999" }, 2 * time.Second, 2 * time.Second},
		{"year 9999 capped", 503, func() string { return "Fri, 31 Dec 9999 23:59:59 GMT" }, 2 * time.Second, 2 * time.Second},
		{"negative", 503, func() string { return "-1" }, 10 * time.Second, 100 * time.Millisecond},
		{"huge negative", 503, func() string { return "-99999999999" }, 10 * time.Second, 100 * time.Millisecond},
		{"fraction", 503, func() string { return "1.5" }, 10 * time.Second, 100 * time.Millisecond},
		{"exponent", 503, func() string { return "1e3" }, 10 * time.Second, 100 * time.Millisecond},
		{"signed", 503, func() string { return "+5" }, 10 * time.Second, 100 * time.Millisecond},
		{"digits then garbage", 503, func() string { return "99999999999x" }, 10 * time.Second, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &fakeBase{respond: failFirst(1, tt.status, http.Header{"Retry-After": {tt.value()}})}
				tr := mustTransport(t, base, breaker.WithRetries(1, generous(t), breaker.WithJitter(0),
					breaker.WithBackoff(100*time.Millisecond, time.Second)), breaker.WithRetryAfterCap(tt.cap))
				req, _ := http.NewRequest(http.MethodGet, "http://svc.test/", nil)
				resp, err := tr.RoundTrip(req)
				if err != nil || resp.StatusCode != 200 || len(base.at) != 2 {
					t.Fatalf("RoundTrip = %v, %v after %d attempts", resp, err, len(base.at))
				}
				if gap := base.at[1].Sub(base.at[0]); gap != tt.want {
					t.Fatalf("waited %v, want %v", gap, tt.want)
				}
			})
		})
	}
}

// TestTransportRetryAfterDeadline: a Retry-After that would end after the
// request's deadline means no retry; the 503 comes back at once.
func TestTransportRetryAfterDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeBase{respond: failFirst(1, 503, http.Header{"Retry-After": {"5"}})}
		tr := mustTransport(t, base, fastRetries(t, 3)...)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc.test/", nil)
		start := time.Now()
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != 503 || base.attempts() != 1 || time.Since(start) != 0 {
			t.Fatalf("RoundTrip = %v, %v; attempts %d after %v", resp, err, base.attempts(), time.Since(start))
		}
		if base.resps[0].closed {
			t.Fatal("returned response's body closed")
		}
	})
}

// TestTransportCancelDuringWait: cancelling the request during the wait
// returns at once, with the failed response drained and closed.
func TestTransportCancelDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeBase{respond: always(503)}
		tr := mustTransport(t, base, breaker.WithRetries(3, generous(t), breaker.WithBackoff(time.Second, time.Second)))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc.test/", nil)
		resp, err := tr.RoundTrip(req)
		if resp != nil || !errors.Is(err, context.Canceled) || base.attempts() != 1 {
			t.Fatalf("RoundTrip = %v, %v after %d attempts", resp, err, base.attempts())
		}
		if !base.resps[0].closed {
			t.Fatal("failed response leaked")
		}
	})
}

// TestTransportRejectClosesRequestBody: when the breaker rejects, the base
// transport never sees the request, so the Transport closes its body.
func TestTransportRejectClosesRequestBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeBase{respond: always(500)}
		tr := mustTransport(t, base, breaker.WithConsecutiveFailures(1))
		req, _ := http.NewRequest(http.MethodGet, "http://svc.test/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != 500 {
			t.Fatal(resp, err)
		}
		_ = resp.Body.Close()
		rb := newBody("data")
		req, _ = http.NewRequest(http.MethodPost, "http://svc.test/", rb)
		resp, err = tr.RoundTrip(req)
		if resp != nil || err != breaker.ErrOpen || !rb.closed || base.attempts() != 1 {
			t.Fatalf("RoundTrip = %v, %v; body closed %v; attempts %d", resp, err, rb.closed, base.attempts())
		}
		if b := tr.Breaker("svc.test"); b.State() != breaker.Open || b.Name() != "svc.test" {
			t.Fatalf("breaker %q is %v", b.Name(), b.State())
		}
	})
}

// TestTransportErrOpenThroughClient: over loopback, a real http.Client sees
// the 500 as a response, then the rejection as an error that matches
// ErrOpen through the *url.Error.
func TestTransportErrOpenThroughClient(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "sick", http.StatusInternalServerError)
	}))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: mustTransport(t, base, breaker.WithConsecutiveFailures(1))}
	resp, err := client.Get(srv.URL)
	if err != nil || resp.StatusCode != 500 {
		t.Fatalf("first Get = %v, %v", resp, err)
	}
	_ = resp.Body.Close()
	resp, err = client.Get(srv.URL)
	var ue *url.Error
	if resp != nil || !errors.As(err, &ue) || !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("second Get = %v, %v; want *url.Error matching ErrOpen", resp, err)
	}
	if hits.Load() != 1 {
		t.Fatalf("server hit %d times, want 1", hits.Load())
	}
}

// TestTransportDrainReusesConnection: over loopback, failed attempts are
// drained and closed, so four attempts share one connection.
func TestTransportDrainReusesConnection(t *testing.T) {
	var hits, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(strings.Repeat("e", 8<<10)))
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: mustTransport(t, base, fastRetries(t, 3)...)}
	resp, err := client.Get(srv.URL)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("Get = %v, %v", resp, err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(b) != "ok" || hits.Load() != 4 || conns.Load() != 1 {
		t.Fatalf("body %q, hits %d, connections %d; want ok, 4, 1", b, hits.Load(), conns.Load())
	}
}

// TestTransportPerHost: each host has its own breaker by default; a key
// func can group hosts.
func TestTransportPerHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeBase{respond: func(int) (int, http.Header, error) { return 200, nil, nil }}
		sick := mustTransport(t, &fakeBase{respond: always(500)}, breaker.WithConsecutiveFailures(1))
		get := func(tr http.RoundTripper, host string) (*http.Response, error) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/", nil)
			return tr.RoundTrip(req)
		}
		_, _ = get(sick, "a.test")
		if _, err := get(sick, "a.test"); err != breaker.ErrOpen {
			t.Fatalf("a.test: %v", err)
		}
		if resp, err := get(sick, "b.test"); err != nil || resp.StatusCode != 500 {
			t.Fatalf("b.test shares a's breaker: %v", err)
		}
		one := mustTransport(t, base, breaker.WithKeyFunc(func(*http.Request) string { return "all" }))
		if _, err := get(one, "a.test"); err != nil {
			t.Fatal(err)
		}
		if b := one.Breaker("all"); b.Name() != "all" {
			t.Fatalf("breaker named %q", b.Name())
		}
	})
}

// FuzzRetryAfter: whatever the Retry-After header says, the wait before
// the retry stays between the backoff and the cap.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "30", "0", "-1", "soon", "", " 2 ", "99999999999999999999", "4294967296", "99999999999",
		"Sat, 01 Jan 2000 00:00:03 GMT", "Fri, 31 Dec 1999 23:59:59 GMT", "Mon, 01 Jan 3000 00:00:00 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		synctest.Test(t, func(t *testing.T) {
			base := &fakeBase{respond: failFirst(1, 503, http.Header{"Retry-After": {v}})}
			tr := mustTransport(t, base, breaker.WithRetries(1, generous(t), breaker.WithJitter(0),
				breaker.WithBackoff(100*time.Millisecond, time.Second)), breaker.WithRetryAfterCap(2*time.Second))
			req, _ := http.NewRequest(http.MethodGet, "http://svc.test/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil || resp.StatusCode != 200 || len(base.at) != 2 {
				t.Fatalf("RoundTrip = %v, %v", resp, err)
			}
			gap := base.at[1].Sub(base.at[0])
			if gap < 100*time.Millisecond || gap > 2*time.Second {
				t.Fatalf("Retry-After %q: waited %v", v, gap)
			}
			// delay-seconds of 2 or more, however many digits, waits the cap.
			if d := strings.TrimSpace(v); d != "" && strings.Trim(d, "0123456789") == "" {
				n, err := strconv.ParseUint(d, 10, 64) // only ErrRange, past 2^64-1
				if (err != nil || n >= 2) && gap != 2*time.Second {
					t.Fatalf("Retry-After %q: waited %v, want the 2s cap", v, gap)
				}
			}
		})
	})
}

package edge_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/logbudget"
)

// floodVerify is the I1 verifier: "v2.<id>" tokens are valid, the older
// "v1:<id>" format is rejected as unsupported, "crash.<id>" makes it panic
// (the "cleanup" that throws), anything else is invalid.
func floodVerify(_ context.Context, tok string) (user, error) {
	switch {
	case strings.HasPrefix(tok, "v2."):
		return user{Name: tok[3:]}, nil
	case strings.HasPrefix(tok, "v1:"):
		return user{}, edge.ErrUnsupportedVersion
	case strings.HasPrefix(tok, "crash."):
		panic("token parser: index out of range")
	}
	return user{}, errors.New("token parser: unknown format")
}

// floodReq is one request of the flood. raw requests are written as bytes
// over a net.Conn because the Go client refuses to send their header.
type floodReq struct {
	auth   string
	raw    bool
	reason edge.Reason // what edge must classify; ReasonNone for valid
}

const floodN = 10000

// floodRequests builds the I1 mix: 60% valid, 30% old format, 5% garbage,
// 5% verifier panics, shuffled with a fixed seed.
func floodRequests() []floodReq {
	rng := rand.New(rand.NewPCG(1, 2))
	var reqs []floodReq
	add := func(n int, f func(i int) floodReq) {
		for i := range n {
			reqs = append(reqs, f(i))
		}
	}
	add(6000, func(i int) floodReq { return floodReq{auth: fmt.Sprintf("Bearer v2.user%d", i)} })
	add(3000, func(i int) floodReq {
		return floodReq{auth: fmt.Sprintf("Bearer v1:user%d", i), reason: edge.ReasonUnsupportedVersion}
	})
	add(500, func(i int) floodReq {
		return floodReq{auth: fmt.Sprintf("Bearer crash.%d", i), reason: edge.ReasonPanic}
	})
	// 500 garbage.
	add(150, func(int) floodReq { // random bytes, including obs-text (>= 0x80)
		b := make([]byte, 1+rng.IntN(200))
		for j := range b {
			b[j] = byte(0x21 + rng.IntN(0xff-0x21+1))
			if b[j] == 0x7f {
				b[j] = 0x80
			}
		}
		b[rng.IntN(len(b))] = byte(0x80 + rng.IntN(0x80))
		return floodReq{auth: "Bearer " + string(b), reason: edge.ReasonMalformed}
	})
	add(50, func(int) floodReq { // random visible ASCII: reaches verify, which fails
		b := make([]byte, 1+rng.IntN(100))
		for j := range b {
			b[j] = byte(0x21 + rng.IntN(0x7e-0x21+1))
		}
		return floodReq{auth: "Bearer x" + string(b), reason: edge.ReasonInvalid}
	})
	add(50, func(i int) floodReq { // a control character the client can send
		return floodReq{auth: fmt.Sprintf("Bearer v2.user%d\tadmin", i), reason: edge.ReasonMalformed}
	})
	add(50, func(i int) floodReq { // control characters net/http itself rejects (400)
		return floodReq{auth: fmt.Sprintf("Bearer v2.u%c%d", []byte{0, 1, 0x0b, 0x1b, 0x7f}[i%5], i), raw: true}
	})
	add(100, func(int) floodReq { // 64 KiB headers
		return floodReq{auth: "Bearer v2." + strings.Repeat("A", 64<<10), reason: edge.ReasonOversized}
	})
	add(100, func(i int) floodReq { // empty Bearer
		return floodReq{auth: []string{"Bearer", "Bearer ", "bearer   "}[i%3], reason: edge.ReasonMalformed}
	})
	rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	return reqs
}

// floodResult is what one flood produced.
type floodResult struct {
	codes    map[int]int // status code -> count
	conn     int         // requests that got no HTTP response
	elapsed  time.Duration
	byReason map[edge.Reason]map[int]int
}

// runFlood sends reqs to h over loopback with a few keep-alive workers.
func runFlood(t *testing.T, h http.Handler, errorLog *log.Logger, reqs []floodReq) floodResult {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = errorLog
	srv.Start()
	defer srv.Close()
	const workers = 4
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	addr := srv.Listener.Addr().String()

	res := floodResult{codes: map[int]int{}, byReason: map[edge.Reason]map[int]int{}}
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) {
					return
				}
				code := send(client, srv.URL, addr, reqs[i])
				mu.Lock()
				if code == 0 {
					res.conn++
				} else {
					res.codes[code]++
				}
				m := res.byReason[reqs[i].reason]
				if m == nil {
					m = map[int]int{}
					res.byReason[reqs[i].reason] = m
				}
				m[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// send returns the status code, or 0 if there was no response.
func send(client *http.Client, url, addr string, fr floodReq) int {
	if fr.raw {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: flood\r\nAuthorization: %s\r\nConnection: close\r\n\r\n", fr.auth)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header["Authorization"] = []string{fr.auth}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// lineCounter counts the lines and bytes written to it.
type lineCounter struct {
	lines, bytes atomic.Int64
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines.Add(int64(strings.Count(string(p), "\n")))
	c.bytes.Add(int64(len(p)))
	return len(p), nil
}

type naiveKey struct{}

// naiveAuth reproduces the incident: a token error or a parser panic
// becomes a 500 and a log line with a stack trace.
func naiveAuth(verify func(context.Context, string) (user, error), logger *slog.Logger) edge.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					logger.Error("token parse panic", "panic", v, "stack", string(debug.Stack()))
					http.Error(w, "internal error", http.StatusInternalServerError)
				}
			}()
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			u, err := verify(r.Context(), tok)
			if err != nil {
				logger.Error("token parse failed", "err", err, "stack", string(debug.Stack()))
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), naiveKey{}, u)))
		})
	}
}

func ok200(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

// TestTokenFlood is the I1 proof: the same 10,000-request flood through
// edge.Auth (anonymous and Required) and through the naive middleware.
func TestTokenFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood")
	}
	reqs := floodRequests()
	want := map[edge.Reason]int{}
	raw := 0
	for _, r := range reqs {
		if r.raw {
			raw++
			continue
		}
		want[r.reason]++
	}
	if len(reqs) != floodN || want[edge.ReasonNone] != 6000 || want[edge.ReasonUnsupportedVersion] != 3000 || want[edge.ReasonPanic] != 500 {
		t.Fatalf("bad mix: %d requests, %v", len(reqs), want)
	}
	const limit = 10
	bad := floodN - want[edge.ReasonNone] - raw // requests edge sees without a valid token

	report := []string{"| run | 5xx | 401 | 400 (net/http) | no response | log lines | log bytes | time |", "|---|---|---|---|---|---|---|---|"}
	for _, required := range []bool{false, true} {
		name := "edge.Auth (anonymous)"
		if required {
			name = "edge.Auth (Required)"
		}
		t.Run(name, func(t *testing.T) {
			m := metrictest.New(t)
			logs := &logtest.Records{}
			var out lineCounter
			text := slog.NewTextHandler(&out, nil)
			clk := fakeclock.New()
			budget, err := logbudget.New(teeHandler{logs, text}, logbudget.WithLimit(limit), logbudget.WithInterval(time.Minute),
				logbudget.WithKeyAttr("reason"), logbudget.WithClock(clk.Now), logbudget.WithMeterProvider(m))
			if err != nil {
				t.Fatal(err)
			}
			opts := []edge.AuthOption{edge.WithLogger(slog.New(budget)), edge.WithMeterProvider(m)}
			outcome := "anonymous"
			if required {
				opts = append(opts, edge.WithRequired())
				outcome = "rejected"
			}
			var serverLog lineCounter
			res := runFlood(t, edge.Auth(floodVerify, opts...)(http.HandlerFunc(ok200)), log.New(&serverLog, "", 0), reqs)

			fivexx := 0
			for c, n := range res.codes {
				if c >= 500 {
					fivexx += n
				}
			}
			if fivexx != 0 || res.conn != 0 {
				t.Errorf("5xx %d, no response %d; want 0, 0 (codes %v)", fivexx, res.conn, res.codes)
			}
			if res.codes[400] != raw {
				t.Errorf("400s %d, want %d (only the requests net/http rejects)", res.codes[400], raw)
			}
			if required {
				if res.codes[401] != bad || res.codes[200] != want[edge.ReasonNone] {
					t.Errorf("401 %d, 200 %d; want exactly the %d invalid ones and %d", res.codes[401], res.codes[200], bad, want[edge.ReasonNone])
				}
				if n := res.byReason[edge.ReasonNone][200]; n != want[edge.ReasonNone] {
					t.Errorf("valid tokens answered 200: %d of %d", n, want[edge.ReasonNone])
				}
			} else if res.codes[200] != floodN-raw {
				t.Errorf("200 %d, want %d", res.codes[200], floodN-raw)
			}
			// Per-reason counters equal the true counts.
			if n := m.Sum("blastradius.edge.auth.results", "result", "ok"); n != int64(want[edge.ReasonNone]) {
				t.Errorf("results{ok} = %d, want %d", n, want[edge.ReasonNone])
			}
			for reason, n := range want {
				if reason == edge.ReasonNone {
					continue
				}
				if got := m.Sum("blastradius.edge.auth.results", "result", outcome, "reason", reason.String()); got != int64(n) {
					t.Errorf("results{%s,%s} = %d, want %d", outcome, reason, got, n)
				}
			}
			if n := m.Total("blastradius.edge.auth.results"); n != int64(floodN-raw) {
				t.Errorf("results total = %d, want %d", n, floodN-raw)
			}
			// Logs: at most the budget per reason within the interval...
			var suppressed int64
			for reason, n := range want {
				if reason == edge.ReasonNone {
					continue
				}
				if got := logs.Count("edge: auth failed", "reason", reason.String()); got != min(n, limit) {
					t.Errorf("records for %s = %d, want %d", reason, got, min(n, limit))
				}
				suppressed += int64(max(n-limit, 0))
			}
			if got := m.Total("blastradius.logbudget.suppressed"); got != suppressed {
				t.Errorf("logbudget.suppressed = %d, want %d", got, suppressed)
			}
			// ...plus one summary per reason with the exact suppressed count,
			// written lazily by the first record after the interval.
			clk.Advance(time.Minute)
			budget.Handle(t.Context(), slog.NewRecord(clk.Now(), slog.LevelInfo, "next interval", 0))
			for reason, n := range want {
				if reason == edge.ReasonNone || n <= limit {
					continue
				}
				if got := logs.Count(logbudget.SummaryMessage, "reason", reason.String()); got != 1 {
					t.Errorf("summaries for %s = %d, want 1", reason, got)
				}
				if got := logs.Count(logbudget.SummaryMessage, "suppressed", fmt.Sprint(n-limit)); got < 1 {
					t.Errorf("no summary with suppressed=%d for %s", n-limit, reason)
				}
			}
			if serverLog.lines.Load() != 0 {
				t.Errorf("net/http logged %d lines", serverLog.lines.Load())
			}
			lines := out.lines.Load() - 1 // minus the "next interval" record
			report = append(report, fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %d | %v |", name, fivexx, res.codes[401], res.codes[400], res.conn,
				lines, out.bytes.Load(), res.elapsed.Round(time.Millisecond)))
		})
	}
	t.Run("naive", func(t *testing.T) {
		var out, serverLog lineCounter
		res := runFlood(t, naiveAuth(floodVerify, slog.New(slog.NewTextHandler(&out, nil)))(http.HandlerFunc(ok200)), log.New(&serverLog, "", 0), reqs)
		fivexx := 0
		for c, n := range res.codes {
			if c >= 500 {
				fivexx += n
			}
		}
		// The incident: every token the naive parser rejects is a 500 and a
		// stack trace. (It has no size cap and no byte check, so it accepts
		// the 64 KiB and tab-carrying "v2." tokens that edge refuses.)
		naiveBad := 0
		for _, r := range reqs {
			if !r.raw && !strings.HasPrefix(strings.TrimPrefix(r.auth, "Bearer "), "v2.") {
				naiveBad++
			}
		}
		if fivexx != naiveBad {
			t.Errorf("naive 5xx = %d, want %d", fivexx, naiveBad)
		}
		if n, b := out.lines.Load(), out.bytes.Load(); n != int64(naiveBad) || b < n*500 {
			t.Errorf("naive log: %d lines, %d bytes; want %d lines, each with a stack trace", n, b, naiveBad)
		}
		report = append(report, fmt.Sprintf("| naive (the incident) | %d | %d | %d | %d | %d | %d | %v |", fivexx, res.codes[401], res.codes[400], res.conn,
			out.lines.Load()+serverLog.lines.Load(), out.bytes.Load()+serverLog.bytes.Load(), res.elapsed.Round(time.Millisecond)))
	})
	t.Logf("I1 token flood, %d requests (%d valid, %d old format, %d verifier panics, %d garbage of which %d rejected by net/http):\n%s",
		floodN, want[edge.ReasonNone], want[edge.ReasonUnsupportedVersion], want[edge.ReasonPanic],
		floodN-want[edge.ReasonNone]-want[edge.ReasonUnsupportedVersion]-want[edge.ReasonPanic], raw, strings.Join(report, "\n"))
}

// teeHandler sends every record to both handlers.
type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}
func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	_ = t.a.Handle(ctx, r.Clone())
	return t.b.Handle(ctx, r)
}
func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}
func (t teeHandler) WithGroup(g string) slog.Handler {
	return teeHandler{t.a.WithGroup(g), t.b.WithGroup(g)}
}

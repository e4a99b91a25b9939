package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blastradius/blastradius/breaker"
	"github.com/blastradius/blastradius/compat"
	"github.com/blastradius/blastradius/edge"
)

// I1: an auth "cleanup" made the token parser throw on the previous token
// format, which was still in the wild. Every logged-in request with an old
// token became a 500 with a stack trace in the log, and the client fleet's
// retries multiplied the load.
//
// The fleet sends the same mix to both servers: 65% current (v2) tokens,
// 30% legacy (v1) tokens minted before the cleanup, 5% garbage.

var i1Key = []byte("tour-signing-key")

type i1Claims struct {
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
}

func i1Sign(msg string) []byte {
	m := hmac.New(sha256.New, i1Key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// v1 (legacy, unversioned): uid:expiry:hexsig
func i1MintV1(uid string, exp int64) string {
	msg := uid + ":" + strconv.FormatInt(exp, 10)
	return msg + ":" + hex.EncodeToString(i1Sign(msg))
}

// v2: "v2." + base64url(JSON claims) + "." + base64url(sig)
func i1MintV2(uid string, exp int64) string {
	body, _ := json.Marshal(i1Claims{Sub: uid, Exp: exp})
	msg := "v2." + base64.RawURLEncoding.EncodeToString(body)
	return msg + "." + base64.RawURLEncoding.EncodeToString(i1Sign(msg))
}

var errI1Signature = errors.New("bad signature")

func i1ParseV2(b []byte) (i1Claims, error) {
	s := string(b)
	dot := strings.LastIndexByte(s, '.')
	if !strings.HasPrefix(s, "v2.") || dot <= 3 {
		return i1Claims{}, fmt.Errorf("%w: not a v2 token", edge.ErrMalformed)
	}
	sig, err := base64.RawURLEncoding.DecodeString(s[dot+1:])
	if err != nil || !hmac.Equal(sig, i1Sign(s[:dot])) {
		return i1Claims{}, errI1Signature
	}
	body, err := base64.RawURLEncoding.DecodeString(s[3:dot])
	if err != nil {
		return i1Claims{}, fmt.Errorf("%w: %v", edge.ErrMalformed, err)
	}
	var c i1Claims
	if err := json.Unmarshal(body, &c); err != nil {
		return i1Claims{}, fmt.Errorf("%w: %v", edge.ErrMalformed, err)
	}
	return c, nil
}

func i1ParseV1(b []byte) (i1Claims, error) {
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 {
		return i1Claims{}, fmt.Errorf("%w: not a v1 token", edge.ErrMalformed)
	}
	sig, err := hex.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, i1Sign(parts[0]+":"+parts[1])) {
		return i1Claims{}, errI1Signature
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return i1Claims{}, fmt.Errorf("%w: expiry", edge.ErrMalformed)
	}
	return i1Claims{Sub: parts[0], Exp: exp}, nil
}

// i1Token is one request's token and whether it belongs to a logged-in user.
type i1Token struct {
	value    string
	loggedIn bool
}

const i1Requests = 2000

func i1Tokens() []i1Token {
	exp := time.Now().Add(time.Hour).Unix()
	toks := make([]i1Token, i1Requests)
	for i := range toks {
		uid := "u" + strconv.Itoa(i)
		switch r := i % 20; {
		case r < 13: // 65% current tokens
			toks[i] = i1Token{i1MintV2(uid, exp), true}
		case r < 19: // 30% legacy tokens, still in the wild
			toks[i] = i1Token{i1MintV1(uid, exp), true}
		default: // 5% garbage: forged, from the future, or junk
			toks[i] = i1Token{[]string{"v2.e30.Zm9yZ2Vk", "v9.from-the-future", "%%not a token%%"}[i%3], false}
		}
	}
	return toks
}

// lineCounter is a slog.Handler that counts the lines a record would take in
// a text log: one, plus one per line of any multi-line value (a stack trace).
type lineCounter struct{ lines *atomic.Int64 }

func (h lineCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h lineCounter) Handle(_ context.Context, r slog.Record) error {
	n := int64(1)
	r.Attrs(func(a slog.Attr) bool {
		n += int64(strings.Count(a.Value.String(), "\n"))
		return true
	})
	h.lines.Add(n)
	return nil
}
func (h lineCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h lineCounter) WithGroup(string) slog.Handler      { return h }

// i1Stats counts what the server saw.
type i1Stats struct {
	requests, fivexx atomic.Int64
	logLines         atomic.Int64
}

// i1Account is the protected handler: it answers with the user's account,
// or 401 when the request is anonymous.
func i1Account(principal func(*http.Request) (i1Claims, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := principal(r)
		if !ok {
			http.Error(w, "log in to see your account", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "account of %s\n", c.Sub)
	})
}

// i1Count wraps the server to count requests and 5xx answers.
func i1Count(st *i1Stats, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.requests.Add(1)
		cw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(cw, r)
		if cw.code >= 500 {
			st.fivexx.Add(1)
		}
	})
}

type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int)        { w.code = code; w.ResponseWriter.WriteHeader(code) }
func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// i1NaiveServer reproduces the incident: only v2 parses, and a parse error
// is thrown, logged with its stack trace, and answered with 500.
func i1NaiveServer(st *i1Stats) *httptest.Server {
	log := slog.New(lineCounter{&st.logLines})
	type key struct{}
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			c, err := i1ParseV2([]byte(tok))
			if err != nil {
				log.Error("token parse failed", "err", err, "stack", string(debug.Stack()))
				http.Error(w, "internal server error", http.StatusInternalServerError)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, c)))
		})
	}
	return httptest.NewServer(i1Count(st, auth(i1Account(func(r *http.Request) (i1Claims, bool) {
		c, ok := r.Context().Value(key{}).(i1Claims)
		return c, ok
	}))))
}

// i1EdgeServer is the same service with blastradius at the edge: a compat
// decoder that reads both token generations, plugged into edge.Auth in one
// line, behind edge.Recover, logging through a log budget (logbudget).
func i1EdgeServer(st *i1Stats, sabotage bool) (*httptest.Server, error) {
	versions := []compat.Version[i1Claims]{
		{Name: "v2", Match: compat.Prefix("v2."), Decode: i1ParseV2},
		{Name: "v1", Decode: i1ParseV1},
	}
	if sabotage { // the tour's own failure test: forget the legacy parser
		versions = versions[:1]
	}
	dec, err := compat.New(versions, compat.WithName("tokens"))
	if err != nil {
		return nil, err
	}
	log := slog.New(lineCounter{&st.logLines})
	h := edge.Chain(
		edge.Recover(edge.WithLogger(log)),
		edge.Auth(dec.Verify, edge.WithLogger(log)),
	)(i1Account(func(r *http.Request) (i1Claims, bool) { return edge.PrincipalFrom[i1Claims](r.Context()) }))
	return httptest.NewServer(i1Count(st, h)), nil
}

// i1Fleet sends every token once through client, from 8 concurrent workers,
// and returns how many logged-in users got their account.
func i1Fleet(ctx context.Context, url string, client *http.Client, toks []i1Token) (served int64, err error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := atomic.Int64{}
	var ok atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(toks) {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/account", nil)
				req.Header.Set("Authorization", "Bearer "+toks[i].value)
				resp, err := client.Do(req)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && toks[i].loggedIn {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return ok.Load(), firstErr
}

// naiveRetry is the fleet's client before blastradius: up to 3 retries on
// any 5xx, immediately, with no budget and no breaker.
type naiveRetry struct{ base http.RoundTripper }

func (t naiveRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := t.base.RoundTrip(req)
		if err != nil || resp.StatusCode < 500 || attempt == 3 {
			return resp, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// i1Transport is the fleet's client with blastradius: a per-host breaker
// that trips on a failure ratio, 3 retries drawn from the default retry
// budget (10% of requests plus 10 per second), jittered backoff.
func i1Transport() (*breaker.Transport, error) {
	return breaker.NewTransport(nil,
		breaker.WithRetries(3, breaker.WithBackoff(time.Millisecond, 10*time.Millisecond)),
		breaker.WithFailureRatio(0.5, 50, 10*time.Second, time.Second),
		breaker.WithLogger(slog.New(slog.DiscardHandler)),
	)
}

func runI1(ctx context.Context, cfg config) ([]figure, error) {
	toks := i1Tokens()
	var loggedIn float64
	for _, t := range toks {
		if t.loggedIn {
			loggedIn++
		}
	}

	// Without: the thrown parse error, a naive retrying fleet.
	var naive i1Stats
	srv := i1NaiveServer(&naive)
	nt := &http.Transport{MaxIdleConnsPerHost: 16}
	servedNaive, err := i1Fleet(ctx, srv.URL, &http.Client{Transport: naiveRetry{nt}}, toks)
	nt.CloseIdleConnections()
	if err != nil {
		srv.Close()
		return nil, err
	}

	// Defence in depth: blastradius on the clients only, against the same
	// still-broken server. The budget and breaker cap the amplification.
	var depth i1Stats
	depthSrv := i1NaiveServer(&depth)
	dt, err := i1Transport()
	if err != nil {
		depthSrv.Close()
		srv.Close()
		return nil, err
	}
	depthStart := time.Now()
	_, err = i1Fleet(ctx, depthSrv.URL, &http.Client{Transport: dt}, toks)
	depthSecs := time.Since(depthStart).Seconds()
	dt.CloseIdleConnections()
	depthSrv.Close()
	srv.Close()
	if err != nil && !errors.Is(err, breaker.ErrOpen) {
		return nil, err
	}

	// With: edge.Auth with a compat decoder at the server, blastradius
	// transport on the clients.
	var with i1Stats
	esrv, err := i1EdgeServer(&with, cfg.sabotage == "I1")
	if err != nil {
		return nil, err
	}
	defer esrv.Close()
	et, err := i1Transport()
	if err != nil {
		return nil, err
	}
	defer et.CloseIdleConnections()
	servedWith, err := i1Fleet(ctx, esrv.URL, &http.Client{Transport: et}, toks)
	if err != nil && !errors.Is(err, breaker.ErrOpen) {
		return nil, err
	}

	amp := func(st *i1Stats) float64 { return float64(st.requests.Load()) / float64(len(toks)) }
	// The budget's own guarantee: retries stay within 10% of requests plus
	// the floor of 10 per second (a burst of 10, then 10 per second elapsed),
	// plus the slack of its batched deposits: up to 63 requests may be
	// counted late, which lets 10% of them (6.3 retries) through early.
	budgetBound := 1 + 0.1 + (10+10*depthSecs+6.3)/float64(len(toks))
	const logBound = 50 // the edge log budget: 10 per reason per minute, plus summaries
	return []figure{
		{Name: "5xx responses", Without: float64(naive.fivexx.Load()), With: float64(with.fivexx.Load()), Unit: "responses", Target: "0", Pass: with.fivexx.Load() == 0},
		{Name: "logged-in users served", Without: 100 * float64(servedNaive) / loggedIn, With: 100 * float64(servedWith) / loggedIn, Unit: "%", Target: "100", Pass: float64(servedWith) == loggedIn},
		{Name: "amplification (server requests / client requests)", Without: amp(&naive), With: amp(&with), Unit: "x", Target: "<= 1.1", Pass: amp(&with) <= 1.1},
		{Name: "amplification, clients alone vs the broken server", Without: amp(&naive), With: amp(&depth), Unit: "x", Target: fmt.Sprintf("<= %.3f budget", budgetBound), Pass: amp(&depth) <= budgetBound},
		{Name: "server log lines", Without: float64(naive.logLines.Load()), With: float64(with.logLines.Load()), Unit: "lines", Target: fmt.Sprintf("<= %d", logBound), Pass: with.logLines.Load() <= logBound},
	}, nil
}

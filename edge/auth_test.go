package edge_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/internal/metrictest"
)

type user struct{ Name string }

// verifyUser is the verifier used by the tests: "v2.<name>" is valid, other
// prefixes map to the sentinels, "boom" panics.
func verifyUser(_ context.Context, tok string) (user, error) {
	switch {
	case strings.HasPrefix(tok, "v2."):
		return user{Name: tok[3:]}, nil
	case strings.HasPrefix(tok, "v1."):
		return user{}, edge.ErrUnsupportedVersion
	case strings.HasPrefix(tok, "exp."):
		return user{}, fmt.Errorf("token expired at noon: %w", edge.ErrExpired)
	case strings.HasPrefix(tok, "bad."):
		return user{}, edge.ErrMalformed
	case strings.HasPrefix(tok, "inv."):
		return user{}, edge.ErrInvalid
	case tok == "boom":
		panic("verifier exploded")
	}
	return user{}, errors.New("no idea")
}

func TestAuthReasons(t *testing.T) {
	tests := []struct {
		name     string
		headers  []string // Authorization values; nil means none
		reason   edge.Reason
		verified bool // verify is called
		who      string
	}{
		{"valid", []string{"Bearer v2.alice"}, edge.ReasonNone, true, "alice"},
		{"scheme case-insensitive", []string{"bearer v2.alice"}, edge.ReasonNone, true, "alice"},
		{"several spaces", []string{"Bearer   v2.alice"}, edge.ReasonNone, true, "alice"},
		{"missing", nil, edge.ReasonMissing, false, ""},
		{"other scheme", []string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, edge.ReasonMissing, false, ""},
		{"scheme without space", []string{"Bearerv2.alice"}, edge.ReasonMissing, false, ""},
		{"empty bearer", []string{"Bearer"}, edge.ReasonMalformed, false, ""},
		{"bearer and spaces", []string{"Bearer   "}, edge.ReasonMalformed, false, ""},
		{"space in token", []string{"Bearer v2.al ice"}, edge.ReasonMalformed, false, ""},
		{"control char", []string{"Bearer v2.\x01x"}, edge.ReasonMalformed, false, ""},
		{"nul", []string{"Bearer v2.\x00"}, edge.ReasonMalformed, false, ""},
		{"non-ascii", []string{"Bearer v2.é"}, edge.ReasonMalformed, false, ""},
		{"two headers", []string{"Bearer v2.alice", "Bearer v2.bob"}, edge.ReasonMalformed, false, ""},
		{"max size", []string{"Bearer " + strings.Repeat("a", edge.DefaultMaxTokenSize)}, edge.ReasonInvalid, true, ""},
		{"oversized", []string{"Bearer " + strings.Repeat("a", edge.DefaultMaxTokenSize+1)}, edge.ReasonOversized, false, ""},
		{"64 KiB", []string{"Bearer " + strings.Repeat("v", 64<<10)}, edge.ReasonOversized, false, ""},
		{"old version", []string{"Bearer v1.alice"}, edge.ReasonUnsupportedVersion, true, ""},
		{"expired (wrapped)", []string{"Bearer exp.alice"}, edge.ReasonExpired, true, ""},
		{"malformed by verify", []string{"Bearer bad.alice"}, edge.ReasonMalformed, true, ""},
		{"invalid", []string{"Bearer inv.alice"}, edge.ReasonInvalid, true, ""},
		{"unknown error", []string{"Bearer whatever"}, edge.ReasonInvalid, true, ""},
		{"panic", []string{"Bearer boom"}, edge.ReasonPanic, true, ""},
	}
	for _, required := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("required=%v/%s", required, tt.name), func(t *testing.T) {
				m := metrictest.New(t)
				logs := &logtest.Records{}
				var calls atomic.Int32
				verify := func(ctx context.Context, tok string) (user, error) {
					calls.Add(1)
					return verifyUser(ctx, tok)
				}
				var observed []edge.AuthResult
				opts := []edge.AuthOption{edge.WithMeterProvider(m), edge.WithLogger(slog.New(logs)),
					edge.WithObserver(func(_ *http.Request, res edge.AuthResult) { observed = append(observed, res) })}
				if required {
					opts = append(opts, edge.WithRequired())
				}
				var (
					nextCalled bool
					got        edge.AuthResult
					gotOK      bool
					who        user
					whoOK      bool
				)
				h := edge.Auth(verify, opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					nextCalled = true
					got, gotOK = edge.AuthResultFrom(r.Context())
					who, whoOK = edge.PrincipalFrom[user](r.Context())
				}))
				req := httptest.NewRequest("GET", "/x", nil)
				for _, v := range tt.headers {
					req.Header.Add("Authorization", v)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)

				if (calls.Load() == 1) != tt.verified {
					t.Errorf("verify calls = %d, want called=%v", calls.Load(), tt.verified)
				}
				wantOutcome := edge.OutcomeOK
				if tt.reason != edge.ReasonNone {
					wantOutcome = edge.OutcomeAnonymous
					if required {
						wantOutcome = edge.OutcomeRejected
					}
				}
				if len(observed) != 1 || observed[0].Outcome != wantOutcome || observed[0].Reason != tt.reason {
					t.Fatalf("observed %+v, want one %v/%v", observed, wantOutcome, tt.reason)
				}
				if tt.reason == edge.ReasonPanic {
					var pe *edge.PanicError
					if !errors.As(observed[0].Err, &pe) || pe.Value != "verifier exploded" {
						t.Errorf("Err = %v, want *PanicError", observed[0].Err)
					}
				}
				if wantOutcome == edge.OutcomeRejected {
					if rec.Code != http.StatusUnauthorized || nextCalled {
						t.Fatalf("code %d, next called %v; want 401 and not called", rec.Code, nextCalled)
					}
					wantWWW := `Bearer error="invalid_token"`
					if tt.reason == edge.ReasonMissing {
						wantWWW = "Bearer"
					}
					if g := rec.Header().Get("WWW-Authenticate"); g != wantWWW {
						t.Errorf("WWW-Authenticate = %q, want %q", g, wantWWW)
					}
				} else {
					if rec.Code != http.StatusOK || !nextCalled {
						t.Fatalf("code %d, next called %v; want 200 and called", rec.Code, nextCalled)
					}
					if !gotOK || got.Outcome != wantOutcome || got.Reason != tt.reason {
						t.Errorf("AuthResultFrom = %+v, %v", got, gotOK)
					}
					if whoOK != (tt.who != "") || who.Name != tt.who {
						t.Errorf("PrincipalFrom = %+v, %v; want %q", who, whoOK, tt.who)
					}
				}
				kv := []string{"result", wantOutcome.String()}
				if tt.reason != edge.ReasonNone {
					kv = append(kv, "reason", tt.reason.String())
				}
				if n := m.Sum("blastradius.edge.auth.results", kv...); n != 1 {
					t.Errorf("auth.results%v = %d, want 1", kv, n)
				}
				if n := m.Total("blastradius.edge.auth.results"); n != 1 {
					t.Errorf("auth.results total = %d, want 1", n)
				}
				wantLogs := 1
				if tt.reason == edge.ReasonNone {
					wantLogs = 0
				}
				if n := logs.Count("edge: auth failed", "reason", tt.reason.String()); n != wantLogs {
					t.Errorf("log records = %d, want %d", n, wantLogs)
				}
				if tt.reason == edge.ReasonPanic {
					r := logs.All()[0]
					if r.Level != slog.LevelError || !strings.Contains(r.Attrs["stack"], "verifyUser") {
						t.Errorf("panic record level %v, stack %q: want Error and the verifier's frame", r.Level, r.Attrs["stack"])
					}
				}
			})
		}
	}
}

func TestAuthSources(t *testing.T) {
	tests := []struct {
		name    string
		opts    []edge.AuthOption
		header  map[string]string
		reason  edge.Reason
		who     string
		maxSize int
	}{
		{"cookie", []edge.AuthOption{edge.WithCookie("session")}, map[string]string{"Cookie": "a=b; session=v2.bob; c=d"}, edge.ReasonNone, "bob", 0},
		{"quoted cookie", []edge.AuthOption{edge.WithCookie("session")}, map[string]string{"Cookie": `session="v2.bob"`}, edge.ReasonNone, "bob", 0},
		{"empty cookie", []edge.AuthOption{edge.WithCookie("session")}, map[string]string{"Cookie": "session=; x=y"}, edge.ReasonMissing, "", 0},
		{"cookie prefix name", []edge.AuthOption{edge.WithCookie("session")}, map[string]string{"Cookie": "sessionx=v2.bob"}, edge.ReasonMissing, "", 0},
		{"cookie bad bytes", []edge.AuthOption{edge.WithCookie("session")}, map[string]string{"Cookie": "session=v2.b\x7fob"}, edge.ReasonMalformed, "", 0},
		{"header wins over cookie", []edge.AuthOption{edge.WithCookie("session")}, map[string]string{"Cookie": "session=v2.bob", "Authorization": "Bearer v2.alice"}, edge.ReasonNone, "alice", 0},
		{"other header raw", []edge.AuthOption{edge.WithHeader("x-api-token", "")}, map[string]string{"X-Api-Token": "v2.carol"}, edge.ReasonNone, "carol", 0},
		{"other scheme", []edge.AuthOption{edge.WithHeader("Authorization", "Token")}, map[string]string{"Authorization": "token v2.dave"}, edge.ReasonNone, "dave", 0},
		{"small max size", []edge.AuthOption{edge.WithMaxTokenSize(4)}, map[string]string{"Authorization": "Bearer v2.erin"}, edge.ReasonOversized, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res edge.AuthResult
			var who user
			h := edge.Auth(verifyUser, append(tt.opts, edge.WithLogger(slog.New(&logtest.Records{})))...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				res, _ = edge.AuthResultFrom(r.Context())
				who, _ = edge.PrincipalFrom[user](r.Context())
			}))
			req := httptest.NewRequest("GET", "/", nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if res.Reason != tt.reason || who.Name != tt.who {
				t.Errorf("reason %v, who %q; want %v, %q", res.Reason, who.Name, tt.reason, tt.who)
			}
		})
	}
}

func TestPrincipalFromOtherType(t *testing.T) {
	var gotUser, gotString bool
	inner := edge.Auth(func(_ context.Context, tok string) (string, error) { return "svc", nil },
		edge.WithHeader("X-Service", ""), edge.WithLogger(slog.New(&logtest.Records{})))
	h := edge.Chain(edge.Auth(verifyUser, edge.WithLogger(slog.New(&logtest.Records{}))), inner)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, gotUser = edge.PrincipalFrom[user](r.Context())
		_, gotString = edge.PrincipalFrom[string](r.Context())
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer v2.alice")
	req.Header.Set("X-Service", "s1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !gotUser || !gotString {
		t.Fatalf("PrincipalFrom[user] %v, [string] %v: want both through nested Auth", gotUser, gotString)
	}
	if _, ok := edge.PrincipalFrom[user](context.Background()); ok {
		t.Fatal("PrincipalFrom on a bare context is ok")
	}
	if _, ok := edge.AuthResultFrom(context.Background()); ok {
		t.Fatal("AuthResultFrom on a bare context is ok")
	}
}

// TestAuthClientGone: a client that goes away while verify runs is counted
// under its own reason, canceled, and logged at Debug, not as an invalid
// token at Warn: a wave of disconnects must not look like an attack on
// tokens. Whatever verify returns once the request context is canceled, the
// reason is canceled; a deadline is not a disconnect and keeps verify's
// reason.
func TestAuthClientGone(t *testing.T) {
	tests := []struct {
		name     string
		verify   func(context.Context, string) (user, error)
		deadline bool // the context ends by a deadline instead of a cancel
		reason   string
		level    slog.Level
	}{
		{"verify returns ctx.Err()", func(ctx context.Context, _ string) (user, error) {
			<-ctx.Done()
			return user{}, fmt.Errorf("introspection: %w", ctx.Err())
		}, false, "canceled", slog.LevelDebug},
		{"verify returns ErrInvalid", func(ctx context.Context, _ string) (user, error) {
			<-ctx.Done()
			return user{}, edge.ErrInvalid
		}, false, "canceled", slog.LevelDebug},
		{"deadline", func(ctx context.Context, _ string) (user, error) {
			<-ctx.Done()
			return user{}, ctx.Err()
		}, true, "invalid", slog.LevelWarn},
	}
	for _, required := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("required=%v/%s", required, tt.name), func(t *testing.T) {
				m := metrictest.New(t)
				logs := &logtest.Records{}
				opts := []edge.AuthOption{edge.WithMeterProvider(m), edge.WithLogger(slog.New(logs))}
				result := "anonymous"
				if required {
					opts, result = append(opts, edge.WithRequired()), "rejected"
				}
				var res edge.AuthResult
				opts = append(opts, edge.WithObserver(func(_ *http.Request, r edge.AuthResult) { res = r }))
				h := edge.Auth(tt.verify, opts...)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
				req := httptest.NewRequest("GET", "/x", nil)
				req.Header.Set("Authorization", "Bearer v2.alice")
				ctx, cancel := context.WithCancel(req.Context())
				if tt.deadline {
					ctx, cancel = context.WithDeadline(req.Context(), time.Now())
				} else {
					cancel()
				}
				defer cancel()
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req.WithContext(ctx))

				if res.Reason.String() != tt.reason || res.Err == nil {
					t.Errorf("result %+v, want reason %s with verify's error", res, tt.reason)
				}
				if want := map[bool]int{false: 200, true: 401}[required]; rec.Code != want {
					t.Errorf("code %d, want %d", rec.Code, want)
				}
				if n := m.Sum("blastradius.edge.auth.results", "result", result, "reason", tt.reason); n != 1 {
					t.Errorf("auth.results{%s, %s} = %d, want 1", result, tt.reason, n)
				}
				if n := m.Total("blastradius.edge.auth.results"); n != 1 {
					t.Errorf("auth.results total = %d, want 1", n)
				}
				recs := logs.All()
				if len(recs) != 1 || recs[0].Level != tt.level || recs[0].Attrs["reason"] != tt.reason {
					t.Errorf("log records %+v, want one at %v with reason %s", recs, tt.level, tt.reason)
				}
			})
		}
	}
}

package edge_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/blastradius/blastradius/edge"
)

// fuzzVerify panics, fails and succeeds depending on the token.
func fuzzVerify(ctx context.Context, tok string) (user, error) {
	if strings.Contains(tok, "!") {
		panic(fmt.Errorf("parser: unexpected %q", tok))
	}
	return verifyUser(ctx, tok)
}

// FuzzAuth: whatever the Authorization and Cookie headers hold, Auth never
// panics and never answers 5xx, and the result it reports is consistent.
func FuzzAuth(f *testing.F) {
	for _, s := range []string{"", "Bearer v2.alice", "bearer v1.bob", "Bearer", "Bearer  ", "Basic x", "Bearer boom",
		"Bearer exp.x", "Bearer a!b", "Bearer v2.\x00", "Bearer \xff\xfe", "Bearer " + strings.Repeat("z", 9000), "Bearer\tv2.tab"} {
		f.Add(s, "session=v2.carol", false)
		f.Add(s, "", true)
	}
	f.Fuzz(func(t *testing.T, authz, cookie string, required bool) {
		opts := []edge.AuthOption{edge.WithCookie("session"), edge.WithLogger(slog.New(discard{})), edge.WithMaxTokenSize(4096)}
		if required {
			opts = append(opts, edge.WithRequired())
		}
		var res edge.AuthResult
		var called bool
		h := edge.Auth(fuzzVerify, opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called = true
			res, _ = edge.AuthResultFrom(r.Context())
		}))
		req := httptest.NewRequest("GET", "/", nil)
		if authz != "" {
			req.Header["Authorization"] = []string{authz}
		}
		if cookie != "" {
			req.Header["Cookie"] = []string{cookie}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("Authorization %q Cookie %q: %d", authz, cookie, rec.Code)
		case rec.Code == 401:
			if !required || called {
				t.Fatalf("401 without Required, or next called")
			}
		case rec.Code == 200:
			if !called || (res.Outcome == edge.OutcomeOK) != (res.Reason == edge.ReasonNone) || (required && res.Outcome != edge.OutcomeOK) {
				t.Fatalf("200 with result %+v (required %v)", res, required)
			}
		default:
			t.Fatalf("unexpected code %d", rec.Code)
		}
	})
}

type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return true }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }

// FuzzLogBudget: under arbitrary messages and key values the budget passes
// exactly min(n, limit) records of a key and summarizes the rest exactly.
func FuzzLogBudget(f *testing.F) {
	f.Add("edge: auth failed", "expired", "other", uint8(10))
	f.Add("", "", "", uint8(0))
	f.Add("", "overflow", "\x00", uint8(7))
	f.Add("a\x00b", "c", "a", uint8(4))
	f.Add(strings.Repeat("m", 300), "\xff", "k", uint8(255))
	f.Fuzz(func(t *testing.T, msg, key, other string, n uint8) {
		const limit = 3
		logs := &capture{}
		m := newMetrics(t)
		b := edge.NewLogBudget(logs, edge.WithLogLimit(limit), edge.WithLogKeyAttr("reason"), edge.WithMeterProvider(m))
		l := slog.New(b)
		for range n {
			l.Info(msg, "reason", key)
		}
		if key != other {
			l.With("reason", other).Info(msg) // another key: its own budget
		}
		passed := 0
		for _, r := range logs.all() {
			if r.msg == msg && r.attrs["reason"] == key {
				passed++
			}
		}
		if passed != min(int(n), limit) {
			t.Fatalf("passed %d of %d, want %d", passed, n, min(int(n), limit))
		}
		want := max(int(n)-limit, 0)
		if got := m.total(t, "blastradius.edge.log.suppressed"); got != int64(want) {
			t.Fatalf("suppressed %d, want %d", got, want)
		}
		b.Flush(context.Background())
		sums := 0
		for _, r := range logs.all() {
			if r.msg == edge.SummaryMessage {
				sums++
				if r.attrs["message"] != msg || r.attrs["reason"] != key || r.attrs["suppressed"] != fmt.Sprint(want) {
					t.Fatalf("summary %+v, want message %q reason %q suppressed %d", r.attrs, msg, key, want)
				}
			}
		}
		if sums != min(want, 1) {
			t.Fatalf("%d summaries, want %d", sums, min(want, 1))
		}
	})
}

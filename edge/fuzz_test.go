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
		opts := []edge.AuthOption{edge.WithCookie("session"), edge.WithLogger(slog.New(slog.DiscardHandler)), edge.WithMaxTokenSize(4096)}
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

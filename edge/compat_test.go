package edge_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/compat"
	"github.com/blastradius/blastradius/edge"
	"github.com/blastradius/blastradius/internal/logtest"
)

type claims struct{ Sub string }

// tokenDecoder accepts two token generations: "v1:<sub>" and "v2.<sub>".
// A v2 token for "mallory" fails its signature check with edge.ErrInvalid.
func tokenDecoder(t testing.TB, opts ...compat.Option) *compat.Decoder[claims] {
	v := func(prefix string) compat.Version[claims] {
		return compat.Version[claims]{
			Name:  strings.Trim(prefix, ":."),
			Match: compat.Prefix(prefix),
			Decode: func(b []byte) (claims, error) {
				sub := string(b[len(prefix):])
				if sub == "mallory" {
					return claims{}, fmt.Errorf("bad signature: %w", edge.ErrInvalid)
				}
				return claims{Sub: sub}, nil
			},
		}
	}
	dec, err := compat.New([]compat.Version[claims]{v("v1:"), v("v2.")}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return dec
}

func TestAuthWithCompatDecoder(t *testing.T) {
	dec := tokenDecoder(t, compat.WithMaxSize(64))
	for _, required := range []bool{false, true} {
		opts := []edge.AuthOption{edge.WithLogger(slog.New(&logtest.Records{}))}
		if required {
			opts = append(opts, edge.WithRequired())
		}
		mw := edge.Auth(dec.Verify, opts...) // the one-line integration
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := edge.PrincipalFrom[claims](r.Context())
			res, _ := edge.AuthResultFrom(r.Context())
			fmt.Fprintf(w, "%s|%s", c.Sub, res.Reason)
		}))
		tests := []struct {
			tok    string
			reason edge.Reason
			sub    string
		}{
			{"v1:alice", edge.ReasonNone, "alice"},
			{"v2.bob", edge.ReasonNone, "bob"},
			{"v9~carol", edge.ReasonUnsupportedVersion, ""},
			{"v2.mallory", edge.ReasonInvalid, ""},
			{"v2." + strings.Repeat("x", 100), edge.ReasonOversized, ""},
		}
		for _, tt := range tests {
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Authorization", "Bearer "+tt.tok)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("required=%v %q: %d", required, tt.tok, rec.Code)
			}
			switch {
			case tt.reason == edge.ReasonNone || !required:
				if want := tt.sub + "|" + tt.reason.String(); rec.Code != 200 || rec.Body.String() != want {
					t.Errorf("required=%v %q: %d %q, want 200 %q", required, tt.tok, rec.Code, rec.Body, want)
				}
			default:
				if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
					t.Errorf("required=%v %q: %d %q, want 401 invalid_token", required, tt.tok, rec.Code, rec.Header())
				}
			}
		}
	}
}

func TestAuthCompatSunset(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dec, err := compat.New([]compat.Version[claims]{{
		Name: "v1", Match: compat.Prefix("v1:"), Sunset: now.Add(-time.Hour),
		Decode: func(b []byte) (claims, error) { return claims{Sub: string(b[3:])}, nil },
	}}, compat.WithRejectAfterSunset(true), compat.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	_, verr := dec.Verify(t.Context(), "v1:alice")
	if !errors.Is(verr, compat.ErrSunset) {
		t.Fatalf("Verify = %v, want ErrSunset", verr)
	}
	var got edge.AuthResult
	h := edge.Auth(dec.Verify, edge.WithLogger(slog.New(&logtest.Records{})))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = edge.AuthResultFrom(r.Context())
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer v1:alice")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got.Reason != edge.ReasonUnsupportedVersion {
		t.Fatalf("reason = %v, want unsupported_version", got.Reason)
	}
}

package rollout_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/blastradius/blastradius/rollout"
)

// badNames are refused by New, Retire and LoadConfig: none of them is one
// URL path segment that the admin handler's router delivers as is.
var badNames = []string{
	"", ".", "..", "...", ".hidden", "-a", "_a", "a/b", "/a", "a/", `a\b`,
	"%2e", "%2e%2e", "a%2fb", " ", "a b", " a", "a\t", "a\x00", "a?b", "a#b",
	"é", "a:b", "~a", strings.Repeat("a", 129),
}

// goodNames are accepted by New and reach their gate through the handler.
var goodNames = []string{
	"a", "Z", "0", "a.", "a..", "a..b", "a-", "a_", "v1.2.3", "checkout-v2", "Checkout_V2",
	"9.", strings.Repeat("a", 128),
}

func TestNameRefused(t *testing.T) {
	reg := newTestRegistry(t)
	for _, name := range badNames {
		if g, err := rollout.New(name); !errors.Is(err, rollout.ErrInvalidConfig) || g != nil {
			t.Errorf("New(%q) = %v, %v; want ErrInvalidConfig", name, g, err)
		}
		if err := rollout.CheckName(name); !errors.Is(err, rollout.ErrInvalidConfig) {
			t.Errorf("CheckName(%q) = %v; want ErrInvalidConfig", name, err)
		}
		if err := reg.Retire(name, "x"); !errors.Is(err, rollout.ErrInvalidConfig) {
			t.Errorf("Retire(%q) = %v; want ErrInvalidConfig", name, err)
		}
		doc := `{"version":"1","gates":[{"name":` + jsonString(name) + `,"percent":1}]}`
		if _, err := reg.LoadConfig(strings.NewReader(doc)); !errors.Is(err, rollout.ErrMalformed) {
			t.Errorf("LoadConfig naming %q = %v; want ErrMalformed", name, err)
		}
	}
}

// TestNameRoundTrips: every name New accepts reaches its gate through
// POST /{name}/kill and GET /{name}, over a real connection.
func TestNameRoundTrips(t *testing.T) {
	reg, err := rollout.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range goodNames {
		if err := rollout.CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
		g, err := rollout.New(name, rollout.WithPercent(100))
		if err != nil {
			t.Fatalf("New(%q): %v", name, err)
		}
		if err := reg.Register(g); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(rollout.Handler(reg, authorize))
	defer srv.Close()
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, name := range goodNames {
		g, _ := reg.Gate(name)
		if code := killThrough(t, client, srv.URL, name); code != http.StatusOK || !g.Status().Killed {
			t.Errorf("POST /%s/kill: %d, killed %v", name, code, g.Status().Killed)
		}
	}
}

// FuzzGateName: a name that New accepts is one path segment that reaches
// its gate through the admin handler.
func FuzzGateName(f *testing.F) {
	for _, name := range append(append([]string{}, goodNames...), badNames...) {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		g, err := rollout.New(name, rollout.WithPercent(100))
		if err != nil {
			if !errors.Is(err, rollout.ErrInvalidConfig) {
				t.Fatalf("New(%q) = %v", name, err)
			}
			return
		}
		reg, _ := rollout.NewRegistry()
		if err := reg.Register(g); err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("POST", "/"+name+"/kill", nil)
		req.Header.Set("Authorization", adminToken)
		rec := httptest.NewRecorder()
		rollout.Handler(reg, authorize).ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !g.Status().Killed {
			t.Fatalf("POST /%s/kill: %d %s", name, rec.Code, rec.Body)
		}
	})
}

func killThrough(t *testing.T, c *http.Client, base, name string) int {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/"+name+"/kill", nil)
	if err != nil {
		t.Fatalf("name %q: %v", name, err)
	}
	req.Header.Set("Authorization", adminToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	return b.String() + `"`
}

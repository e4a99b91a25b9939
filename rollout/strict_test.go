package rollout_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/blastradius/blastradius/rollout"
)

// TestLoadConfigStrictKeys: a config document whose objects repeat a key,
// or spell one in another case, is malformed as a whole, however
// encoding/json would have resolved it (last key wins, case-insensitive
// match). The last good config stays in force.
func TestLoadConfigStrictKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		doc   string
		index int
		entry string // named only where the entry has one exact "name"
	}{
		{"duplicate killed", `{"version":"2","gates":[{"name":"checkout-v2","killed":true,"killed":false}]}`, 0, "checkout-v2"},
		{"duplicate name naming a tombstone", `{"version":"2","gates":[{"name":"power-peg","name":"search-v3","percent":100}]}`, 0, ""},
		{"duplicate name, second entry", `{"version":"2","gates":[{"name":"checkout-v2"},{"name":"search-v3","name":"checkout-v2"}]}`, 1, ""},
		{"duplicate name through an escape", `{"version":"2","gates":[{"name":"power-peg","n\u0061me":"search-v3"}]}`, 0, ""},
		{"duplicate percent", `{"version":"2","gates":[{"name":"search-v3","percent":1,"percent":100}]}`, 0, "search-v3"},
		{"duplicate reason", `{"version":"2","gates":[{"name":"search-v3","killed":true,"reason":"a","reason":"b"}]}`, 0, "search-v3"},
		{"duplicate version", `{"version":"2","version":"3","gates":[]}`, -1, ""},
		{"duplicate gates", `{"version":"2","gates":[{"name":"search-v3","killed":true}],"gates":[]}`, -1, ""},
		{"NAME", `{"version":"2","gates":[{"NAME":"search-v3","percent":100}]}`, 0, ""},
		{"KILLED", `{"version":"2","gates":[{"name":"search-v3","KILLED":true}]}`, 0, "search-v3"},
		{"Percent", `{"version":"2","gates":[{"name":"search-v3","Percent":100}]}`, 0, "search-v3"},
		{"name and Name", `{"version":"2","gates":[{"name":"power-peg","Name":"search-v3"}]}`, 0, "power-peg"},
		{"Gates", `{"version":"2","Gates":[{"name":"search-v3","percent":100}]}`, -1, ""},
		{"VERSION", `{"VERSION":"2","gates":[]}`, -1, ""},
		{"folded Unicode key", `{"version":"2","gates":[{"name":"search-v3","killed":true,"reaſon":"x"}]}`, 0, "search-v3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			before, err := reg.LoadConfig(strings.NewReader(goodConfig))
			if err != nil {
				t.Fatal(err)
			}
			_, err = reg.LoadConfig(strings.NewReader(tc.doc))
			if !errors.Is(err, rollout.ErrMalformed) {
				t.Fatalf("LoadConfig(%s) = %v, want ErrMalformed", tc.doc, err)
			}
			var ce *rollout.ConfigError
			if !errors.As(err, &ce) || ce.Index != tc.index {
				t.Errorf("error %v names gates[%d], want %d", err, ce.Index, tc.index)
			}
			if ce.Entry != tc.entry {
				t.Errorf("error names entry %q, want %q", ce.Entry, tc.entry)
			}
			if reg.Config() != before {
				t.Errorf("config after rejection %+v, want %+v", reg.Config(), before)
			}
			if st := status(t, reg, "search-v3"); st.Percent != 12.5 || st.Killed {
				t.Errorf("search-v3 after rejection: %+v", st)
			}
			if st := status(t, reg, "checkout-v2"); st.Percent != 1 || !st.Killed {
				t.Errorf("checkout-v2 after rejection: %+v", st)
			}
		})
	}
}

// TestHandlerStrictKeys: the admin handler's bodies follow the same rule.
func TestHandlerStrictKeys(t *testing.T) {
	for _, tc := range []struct{ name, path, body, want string }{
		{"duplicate percent", "/search-v3/percent", `{"percent":1,"percent":100}`, `duplicate field \"percent\"`},
		{"Percent", "/search-v3/percent", `{"Percent":100}`, `unknown field \"Percent\"`},
		{"percent and PERCENT", "/search-v3/percent", `{"percent":1,"PERCENT":100}`, `unknown field \"PERCENT\"`},
		{"duplicate reason", "/search-v3/kill", `{"reason":"a","reason":"b"}`, `duplicate field \"reason\"`},
		{"REASON", "/search-v3/kill", `{"REASON":"a"}`, `unknown field \"REASON\"`},
		{"null", "/search-v3/kill", `null`, `not a JSON object`},
		{"two objects", "/search-v3/kill", `{} {}`, `trailing data`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			before := status(t, reg, "search-v3")
			req := httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", adminToken)
			rec := httptest.NewRecorder()
			rollout.Handler(reg, authorize).ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
				t.Fatalf("POST %s %s: %d %s, want 400 with %s", tc.path, tc.body, rec.Code, body, tc.want)
			}
			if after := status(t, reg, "search-v3"); after != before {
				t.Errorf("a rejected request changed the gate: %+v -> %+v", before, after)
			}
		})
	}
}

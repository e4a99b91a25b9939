package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func tour(t *testing.T, args ...string) (code int, out string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code = run(context.Background(), args, &stdout, &stderr)
	if stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	return code, stdout.String()
}

// TestEachIncident runs every incident alone and checks that its table has
// its rows and that every "with" figure met its target.
func TestEachIncident(t *testing.T) {
	for _, in := range incidents {
		t.Run(in.id, func(t *testing.T) {
			code, out := tour(t, "-only", in.id)
			if code != 0 {
				t.Fatalf("exit %d, output:\n%s", code, out)
			}
			if !strings.Contains(out, in.id+" ") || !strings.Contains(out, "every \"with\" figure met its target") {
				t.Fatalf("output lacks the incident row or the verdict:\n%s", out)
			}
			if strings.Contains(out, " NO\n") {
				t.Fatalf("a figure missed its target:\n%s", out)
			}
		})
	}
}

// TestSabotageFails breaks each incident's "with" arm on purpose and checks
// that the tour notices: a failed figure and a non-zero exit code.
func TestSabotageFails(t *testing.T) {
	for _, in := range incidents {
		t.Run(in.id, func(t *testing.T) {
			code, out := tour(t, "-only", in.id, "-sabotage", in.id)
			if code == 0 {
				t.Fatalf("sabotaged %s still exited 0:\n%s", in.id, out)
			}
			if !strings.Contains(out, "FAIL") || !strings.Contains(out, " NO\n") {
				t.Fatalf("sabotaged %s: no failed figure reported:\n%s", in.id, out)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	code, out := tour(t, "-only", "I3", "-json")
	var doc struct {
		Figures []figure `json:"figures"`
		Pass    bool     `json:"pass"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	if code != 0 || !doc.Pass || len(doc.Figures) == 0 || doc.Figures[0].Incident != "I3" {
		t.Fatalf("exit %d, doc %+v", code, doc)
	}
}

func TestUnknownIncident(t *testing.T) {
	if code, _ := tour(t, "-only", "I9"); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}

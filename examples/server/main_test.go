package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServerExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"/hello   alice-v2       -> 200 hello alice",
		"/hello   legacy:bob     -> 200 hello anonymous (unsupported_version)",
		"/hello   %%garbage      -> 200 hello anonymous (malformed)",
		"/hello   boom           -> 200 hello anonymous (panic)",
		"/panic   alice-v2       -> 500",
		"-> 429",
		"Retry-After=",
		"/healthz (no token)     -> 200 ok",
		`blastradius.edge.auth.results{reason=unsupported_version,result=anonymous} 1`,
		`blastradius.edge.panics`,
		`blastradius.edge.shed{reason=rate}`,
		`blastradius.logbudget.suppressed{} `, // the burst's refusals, beyond the one the budget passes
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(got, "handler bug") || strings.Contains(got, "goroutine ") {
		t.Error("a panic or stack trace leaked into a response body")
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}

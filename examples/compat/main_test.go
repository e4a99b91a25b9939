package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCompatExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"-> ada [read write] via v3 fallback=false past_sunset=false",
		"-> bob [admin] via v2 fallback=false past_sunset=false",
		"-> carol [read] via v1 fallback=true past_sunset=true",
		`level=WARN msg="compat: version past sunset accepted" compat.decoder=tokens compat.version=v1 reason=tokens/v1 sunset=2026-10-22T00:00:00.000Z`,
		"v9:from-the-future                           -> error (unrecognized=true)",
		"version v3: 1 decoded", "version v2: 1 decoded", "version v1: 1 decoded",
		"items shapes (shape/count): many/2 one/1",
		"blastradius.compat.decodes{compat.decoder=tokens,compat.version=v1,result=past_sunset} 1",
		"blastradius.compat.decodes{compat.decoder=tokens,compat.version=,result=unrecognized} 1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/blastradius/blastradius/fleet/redisfleet/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// A short run of every measurement, against a real server.
func TestSmoke(t *testing.T) {
	if _, err := redistest.Lookup(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-publishes", "6", "-rounds", "1", "-partition", "300ms", "-hang", "1500ms"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, want := range []string{"every instance applied every version", "heal to applied", "0 changed answers", "8 of 8 kept their state"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

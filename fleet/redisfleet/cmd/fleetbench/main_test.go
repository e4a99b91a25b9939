package main

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/blastradius/blastradius/fleet/redisfleet/internal/redistest"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	redis.SetLogger(quietLogger{})
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

// A flag the measurements cannot use is an error that names it, before any
// server starts.
func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-instances", "0"}, {"-publishes", "0"}, {"-rounds", "-1"}, {"-partition", "0s"}, {"-hang", "-1s"},
	} {
		var out bytes.Buffer
		if err := run(args, &out); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("run(%q): error %v, want one naming %s", args, err, args[0])
		}
		if out.Len() != 0 {
			t.Errorf("run(%q) printed %q", args, out.String())
		}
	}
}

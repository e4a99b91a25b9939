package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke builds the servers and runs the benchmark's smoke configuration
// end to end (seconds): calibration, 2× load against a static cap, the
// adaptive limit and go-zero's shedder, each in its own process, and a
// capacity-halving run of the adaptive limit. It checks that every
// contender answered and that the edge contenders shed with Retry-After;
// the figures themselves are noisy on a shared machine and are the full
// run's business.
func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	if err := build(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-smoke", "-bin", dir}, &out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	rows := map[string][]string{}
	for line := range strings.Lines(out.String()) {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) == 9 && cells[0] == "2.0×" {
			rows[cells[1]] = cells
		} else if len(cells) == 8 && cells[0] == "adaptive" {
			rows["halving"] = cells
		}
	}
	percent := regexp.MustCompile(`^(\d+)%$`)
	value := func(cell string) int {
		m := percent.FindStringSubmatch(cell)
		if m == nil {
			t.Fatalf("%q is not a percentage", cell)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	for _, c := range []string{"static", "adaptive", "gozero-cpu0"} {
		r, ok := rows[c]
		if !ok {
			t.Fatalf("no 2× row for %s", c)
		}
		if g := value(r[2]); g < 40 {
			t.Errorf("%s: goodput %d%% of capacity, want at least 40%% even in a smoke run", c, g)
		}
	}
	for _, c := range []string{"static", "adaptive"} {
		if r := rows[c]; r[5] == "0" || r[7] != "100%" {
			t.Errorf("%s: refused %s with Retry-After %s; want some refused, all with Retry-After", c, r[5], r[7])
		}
	}
	if _, ok := rows["halving"]; !ok {
		t.Error("no capacity-halving row")
	}
}

func TestParse(t *testing.T) {
	for _, args := range [][]string{
		{"-loads", "2,x"}, {"-loads", "0"}, {"-loads", "-1"}, {"-loads", "Inf"},
		{"-contenders", "static,nginx"}, {"-halving", "gozero,other"}, {"-handlers", "io"},
		{"-slots", "0"}, {"-duration", "0s"}, {"-calibrate", "-1s"}, {"-warmup", "-1s"}, {"-phase", "0s"},
		{"-slot-work", "0s"}, {"-cpu-work", "-5ms"},
	} {
		if _, err := parse(args); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("parse(%q): error %v, want one naming %s", args, err, args[0])
		}
	}
	c, err := parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.loads) != 6 || len(c.contenders) != 5 || len(c.halvers) != 3 || len(c.handlers) != 2 {
		t.Errorf("defaults: %+v", c)
	}
}

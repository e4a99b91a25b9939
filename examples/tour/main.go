package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one measured row of the table.
type figure struct {
	Incident string  `json:"incident"`
	Name     string  `json:"figure"`
	Without  float64 `json:"without"`
	With     float64 `json:"with"`
	Unit     string  `json:"unit"`
	Target   string  `json:"target"` // the target for the "with" figure, human-readable
	Pass     bool    `json:"pass"`
}

// incident replays one incident both ways.
type incident struct {
	id    string
	title string
	run   func(ctx context.Context, cfg config) ([]figure, error)
}

// config carries the flags that incidents read.
type config struct {
	// sabotage names an incident whose "with" arm is broken on purpose
	// (for example its guard disabled), so tests can prove that the tour
	// detects a failure and exits non-zero.
	sabotage string
	// notes collects details printed under the table, such as the guard's
	// kill reason.
	notes *[]string
	// redis is the address of the Redis that the fleets of I2 and I5 sync through;
	// empty means the in-memory store.
	redis string
}

var incidents = []incident{
	{"I1", "old tokens and the retry feedback loop", runI1},
	{"I2", "the lookup that started returning null", runI2},
	{"I3", "the array that became an object", runI3},
	{"I4", "a bad change live in production", runI4},
	{"I5", "Knight Capital: a repurposed flag on a stale server", runI5},
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tour", flag.ContinueOnError)
	fs.SetOutput(stderr)
	only := fs.String("only", "", "run only this incident (I1..I5)")
	asJSON := fs.Bool("json", false, "write the figures as JSON instead of a table")
	sabotage := fs.String("sabotage", "", "break the \"with\" arm of this incident on purpose (for tests)")
	redisAddr := fs.String("redis", "", "run the fleets of I2 and I5 on the Redis at this address (host:port) instead of the in-memory store")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var todo []incident
	for _, in := range incidents {
		if *only == "" || strings.EqualFold(*only, in.id) {
			todo = append(todo, in)
		}
	}
	if len(todo) == 0 {
		fmt.Fprintf(stderr, "tour: unknown incident %q (want I1..I5)\n", *only)
		return 2
	}
	var notes []string
	cfg := config{sabotage: strings.ToUpper(*sabotage), notes: &notes, redis: *redisAddr}
	start := time.Now()
	var all []figure
	failed := false
	for _, in := range todo {
		figs, err := in.run(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "tour: %s: %v\n", in.id, err)
			failed = true
			continue
		}
		for _, f := range figs {
			f.Incident = in.id
			if !f.Pass {
				failed = true
			}
			all = append(all, f)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Figures []figure `json:"figures"`
			Pass    bool     `json:"pass"`
			Seconds float64  `json:"seconds"`
		}{all, !failed, time.Since(start).Seconds()})
	} else {
		printTable(stdout, todo, all)
		for _, n := range notes {
			fmt.Fprintln(stdout, n)
		}
		verdict := "every \"with\" figure met its target"
		if failed {
			verdict = "FAIL: at least one \"with\" figure missed its target"
		}
		fmt.Fprintf(stdout, "\n%s (%.1fs)\n", verdict, time.Since(start).Seconds())
	}
	if failed {
		return 1
	}
	return 0
}

func printTable(w io.Writer, todo []incident, figs []figure) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "incident\tfigure\twithout\twith\tunit\ttarget (with)\tok")
	for _, in := range todo {
		fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\n", in.id, in.title)
		for _, f := range figs {
			if f.Incident != in.id {
				continue
			}
			ok := "yes"
			if !f.Pass {
				ok = "NO"
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, num(f.Without), num(f.With), f.Unit, f.Target, ok)
		}
	}
	tw.Flush()
}

// num formats a figure without trailing noise.
func num(v float64) string {
	switch {
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// Command blastradius is the operator's tool for a fleet synced through
// Redis: it kills, resumes and sets gates on every instance, publishes
// config documents, lists the fleet with its fleet guards, and answers who
// was affected: a gate's fleet history, its exposure over a range of time,
// and whether a key was routed to the new path at a moment. Every change
// waits for the instances to apply it and names those that did not; the
// exit status is 1 when one did not within -wait (or the store cannot be
// read), 2 for a usage error. A change published without its fleet
// history entry (the append failed) is live: it is said on stderr, and
// waited for as any other.
//
//	blastradius -redis 127.0.0.1:6379 kill checkout-v2 -reason INC-42
//	blastradius -redis 127.0.0.1:6379 resume checkout-v2
//	blastradius -redis 127.0.0.1:6379 set checkout-v2 12.5
//	blastradius -redis 127.0.0.1:6379 publish config.json
//	blastradius -redis 127.0.0.1:6379 fleet
//	blastradius -redis 127.0.0.1:6379 history checkout-v2
//	blastradius -redis 127.0.0.1:6379 exposure checkout-v2 -from 2h -to 2026-11-30T10:00:00Z
//	blastradius -redis 127.0.0.1:6379 was-enabled checkout-v2 user-42 2026-11-30T09:12:00Z
//
// -redis takes host:port or a redis:// or rediss:// URL (with user,
// password and database); -prefix is the key namespace the instances use.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet"
	"github.com/blastradius/blastradius/rollout"
)

const usage = `usage: blastradius -redis ADDR [-prefix P] [-wait 5s] [-actor NAME] COMMAND

commands:
  kill GATE -reason R   kill GATE on every instance
  resume GATE           resume GATE on every instance
  set GATE PERCENT      set GATE's percent (0 to 100) on every instance
  publish FILE          publish a rollout config document (- for stdin)
  fleet                 list the instances, what is wrong with them, and their fleet guards
  history GATE [-json]  the fleet history of GATE: publishes, guard verdicts, each instance's changes
  exposure GATE [-from T] [-to T] [-json]
                        GATE's exposure from T to T (RFC 3339, or a duration ago such as 2h;
                        default the last 24h): windows, new-arm outcomes, failed keys
  was-enabled GATE KEY TIME [-instance ID]
                        whether KEY was routed to GATE's new path at TIME, by some instance
                        (or by instance ID); exit 0 if so, 1 if not, 2 on an error
`

func main() {
	redis.SetLogger(quietLogger{}) // once per process: it sets go-redis's global logger
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("blastradius", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	addr := fs.String("redis", "", "Redis address (host:port) or URL (redis://user:pass@host:port/db)")
	prefix := fs.String("prefix", redisfleet.DefaultPrefix, "key namespace of the fleet")
	wait := fs.Duration("wait", 5*time.Second, "how long to wait for every instance to apply a change")
	actor := fs.String("actor", "", "who publishes (default user@host)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *addr == "" || fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	opts, err := clientOptions(*addr)
	if err != nil {
		fmt.Fprintln(stderr, "blastradius:", err)
		return 2
	}
	client := redis.NewClient(opts)
	defer client.Close()
	store, err := redisfleet.New(client, redisfleet.WithPrefix(*prefix))
	if err != nil {
		fmt.Fprintln(stderr, "blastradius:", err)
		return 2
	}
	var popts []fleet.PublisherOption
	if *actor != "" {
		popts = append(popts, fleet.WithActor(*actor))
	}
	pub, err := fleet.NewPublisher(store, popts...)
	if err != nil {
		fmt.Fprintln(stderr, "blastradius:", err)
		return 2
	}
	c := &cli{store: store, pub: pub, wait: *wait, prefix: *prefix, stdin: stdin, out: stdout, errw: stderr}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "kill", "resume", "set", "publish":
		return c.change(ctx, cmd, rest)
	case "fleet":
		if len(rest) != 0 {
			return c.usage("fleet takes no arguments")
		}
		return c.fleet(ctx)
	case "history":
		return c.history(ctx, rest)
	case "exposure":
		return c.exposure(ctx, rest)
	case "was-enabled":
		return c.wasEnabled(ctx, rest)
	default:
		return c.usage("unknown command " + strconv.Quote(cmd))
	}
}

func clientOptions(addr string) (*redis.Options, error) {
	var opts *redis.Options
	if strings.Contains(addr, "://") {
		o, err := redis.ParseURL(addr)
		if err != nil {
			return nil, err
		}
		opts = o
	} else {
		opts = &redis.Options{Addr: addr}
	}
	opts.ContextTimeoutEnabled = true
	opts.DialTimeout = 2 * time.Second
	opts.MaxRetries = 1
	return opts, nil
}

type cli struct {
	store     *redisfleet.Store
	pub       *fleet.Publisher
	wait      time.Duration
	prefix    string
	stdin     io.Reader
	out, errw io.Writer
}

func (c *cli) usage(msg string) int {
	fmt.Fprintf(c.errw, "blastradius: %s\n%s", msg, usage)
	return 2
}

// parseArgs parses flags given before or after the positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// change publishes one change and waits for the fleet to apply it.
func (c *cli) change(ctx context.Context, cmd string, args []string) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(c.errw)
	reason := fs.String("reason", "", "why (kill only; required)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	want := map[string]int{"kill": 1, "resume": 1, "set": 2, "publish": 1}[cmd]
	if len(pos) != want {
		return c.usage(fmt.Sprintf("%s takes %d argument(s)", cmd, want))
	}
	if *reason != "" && cmd != "kill" {
		return c.usage("-reason belongs to kill")
	}
	pctx, cancel := context.WithTimeout(ctx, c.wait)
	defer cancel()
	var p fleet.Published
	var what string
	switch cmd {
	case "kill":
		if *reason == "" {
			return c.usage("kill needs -reason (an incident id, say)")
		}
		p, err = c.pub.Kill(pctx, pos[0], *reason)
		what = fmt.Sprintf("killed %s (reason %q)", pos[0], *reason)
	case "resume":
		p, err = c.pub.Resume(pctx, pos[0])
		what = "resumed " + pos[0]
	case "set":
		pct, perr := strconv.ParseFloat(pos[1], 64)
		if perr != nil {
			return c.usage(fmt.Sprintf("percent %q is not a number", pos[1]))
		}
		p, err = c.pub.SetPercent(pctx, pos[0], pct)
		what = fmt.Sprintf("set %s to %v%%", pos[0], pct)
	case "publish":
		doc, rerr := c.readFile(pos[0])
		if rerr != nil {
			fmt.Fprintln(c.errw, "blastradius:", rerr)
			return 2
		}
		p, err = c.pub.PublishConfig(pctx, doc)
		what = "published " + pos[0]
	}
	if err != nil && !errors.Is(err, fleet.ErrNoHistory) {
		fmt.Fprintln(c.errw, "blastradius:", err)
		return 1
	}
	fmt.Fprintf(c.out, "%s: version %d of epoch %s\n", what, p.Version, p.Epoch)
	if err != nil { // live all the same: wait for the fleet to apply it
		fmt.Fprintln(c.errw, "blastradius: the change is published, but its fleet history entry is not:", err)
	}
	acks, err := c.pub.Wait(pctx, p)
	if err != nil {
		fmt.Fprintln(c.errw, "blastradius: the change is published, but the fleet cannot be read:", err)
		return 1
	}
	return c.report(p, acks)
}

func (c *cli) readFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(c.stdin, fleet.MaxRecordBytes))
	}
	return os.ReadFile(name)
}

// report prints who applied the change; it returns 1 if an instance
// lagged or refused it, or if no instance is live.
func (c *cli) report(p fleet.Published, a fleet.Acks) int {
	total := len(a.Applied) + len(a.Refused) + len(a.Lagging)
	if total == 0 {
		fmt.Fprintf(c.out, "NO LIVE INSTANCE under prefix %q: nothing applied it (wrong -redis or -prefix?)\n", c.prefix)
		return 1
	}
	fmt.Fprintf(c.out, "applied on %d/%d instances in %v\n", len(a.Applied), total, a.Took.Round(10*time.Microsecond))
	tw := tabwriter.NewWriter(c.out, 2, 8, 2, ' ', 0)
	for _, m := range a.NoGate {
		fmt.Fprintf(tw, "  no gate %s\t%s\t%s\t(build %s)\n", p.Gate, m.ID, m.Host, m.Build)
	}
	for _, m := range a.Refused {
		fmt.Fprintf(tw, "  REFUSED\t%s\t%s\t%s\n", m.ID, m.Host, m.Rejected.Error)
	}
	for _, m := range a.Lagging {
		fmt.Fprintf(tw, "  LAGGING\t%s\t%s\tat version %d; %s\n", m.ID, m.Host, m.Applied.Version, strings.Join(m.Problems, "; "))
	}
	_ = tw.Flush()
	if len(a.Lagging) > 0 {
		fmt.Fprintf(c.out, "%d instance(s) did not apply it within %v\n", len(a.Lagging), c.wait)
		return 1
	}
	if len(a.Refused) > 0 {
		fmt.Fprintf(c.out, "%d instance(s) refused it\n", len(a.Refused))
		return 1
	}
	return 0
}

// fleet prints the fleet view; it returns 1 if an instance has a problem
// (a stopped one is not a problem).
func (c *cli) fleet(ctx context.Context) int {
	lctx, cancel := context.WithTimeout(ctx, c.wait)
	defer cancel()
	v, err := fleet.List(lctx, c.store)
	if err != nil {
		fmt.Fprintln(c.errw, "blastradius:", err)
		return 1
	}
	fmt.Fprintf(c.out, "store epoch %q version %d", v.Head.Epoch, v.Head.Version)
	if v.ConfigVersion > 0 {
		fmt.Fprintf(c.out, "; config %q (version %d) %s", v.Config.Version, v.ConfigVersion, v.Config.Hash)
	}
	fmt.Fprintln(c.out)
	bad, live := 0, 0
	tw := tabwriter.NewWriter(c.out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tHOST\tBUILD\tAPPLIED\tCONFIG\tSTATE")
	for _, m := range v.Instances {
		state := "ok"
		switch {
		case m.Stopped:
			state = "stopped"
		case len(m.Problems) > 0:
			bad++
			state = strings.Join(m.Problems, "; ")
		}
		if m.Live {
			live++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.Host, m.Build, m.Applied.Version, m.Config.Version, state)
	}
	_ = tw.Flush()
	c.guards(v.Instances)
	fmt.Fprintf(c.out, "%d live, %d with problems", live, bad)
	if v.Unreadable > 0 {
		fmt.Fprintf(c.out, ", %d unreadable heartbeats", v.Unreadable)
	}
	fmt.Fprintln(c.out)
	if bad > 0 || live == 0 {
		return 1
	}
	return 0
}

// guards prints the fleet guards that the live instances report: per gate
// and instance, its mode, whether it holds the lease, its looks, the last
// look's z against its limit, and its last verdict.
func (c *cli) guards(ms []fleet.Member) {
	type row struct {
		id string
		g  fleet.GuardStatus
	}
	var rows []row
	for _, m := range ms {
		if !m.Live {
			continue
		}
		for _, g := range m.Guards {
			rows = append(rows, row{m.ID, g})
		}
	}
	if len(rows) == 0 {
		return
	}
	slices.SortStableFunc(rows, func(a, b row) int { return strings.Compare(a.g.Gate, b.g.Gate) })
	tw := tabwriter.NewWriter(c.out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "GUARD\tINSTANCE\tMODE\tHOLDER\tLOOKS\tLAST LOOK\tVERDICT")
	for _, r := range rows {
		g := r.g
		mode, holder, look, verdict := g.Mode, "no", "-", "none yet"
		if g.Mode == fleet.ModeLocal {
			mode = "local (" + g.StoreError + ")"
		}
		if g.Holder {
			holder = "yes"
		}
		if g.Looks > 0 {
			look = fmt.Sprintf("z=%.2f (limit %.2f)", g.Z, g.Critical)
		}
		if g.Tripped != "" {
			verdict = "TRIPPED: " + g.Tripped
		} else if !g.Holder && g.Mode == fleet.ModeFleet {
			verdict = "-" // the holder judges
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", g.Gate, r.id, mode, holder, g.Looks, look, verdict)
	}
	_ = tw.Flush()
}

// history prints the fleet history of a gate.
func (c *cli) history(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	fs.SetOutput(c.errw)
	asJSON := fs.Bool("json", false, "write the history as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		return c.usage("history takes 1 argument: GATE")
	}
	rctx, cancel := context.WithTimeout(ctx, c.wait)
	defer cancel()
	h, err := fleet.ReadHistory(rctx, c.store, pos[0])
	if err != nil {
		fmt.Fprintln(c.errw, "blastradius:", err)
		return 1
	}
	if *asJSON {
		return c.json(h)
	}
	fmt.Fprintf(c.out, "history of %s (salt %q): %d entries", h.Gate, h.Salt, len(h.Entries))
	if h.Partial {
		fmt.Fprint(c.out, ", PARTIAL: the oldest entries were dropped")
	}
	if h.Unreadable > 0 {
		fmt.Fprintf(c.out, ", %d unreadable", h.Unreadable)
	}
	fmt.Fprintln(c.out)
	if len(h.Entries) == 0 {
		fmt.Fprintf(c.out, "no history: wrong gate, -redis or -prefix, or no publish and no guarded instance yet\n")
		return 0
	}
	tw := tabwriter.NewWriter(c.out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tSOURCE\tBY\tSTATE\tREASON")
	for _, e := range h.Entries {
		by := e.By
		if e.Instance != "" {
			by = "instance " + e.Instance
		}
		if e.Version > 0 {
			by += fmt.Sprintf(" (version %d)", e.Version)
		}
		state := ""
		if e.Percent != nil {
			state = strconv.FormatFloat(*e.Percent, 'f', -1, 64) + "%"
		}
		if e.Killed {
			state = strings.TrimSpace(state + " killed")
		}
		reason := e.Reason
		if e.Counts != nil {
			reason = fmt.Sprintf("%s [new %d/%d, old %d/%d failures/calls]", reason,
				e.Counts.New.Failures, e.Counts.New.Calls, e.Counts.Old.Failures, e.Counts.Old.Calls)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", stamp(e.At), e.Kind, orDash(e.Source), orDash(by), orDash(state), reason)
	}
	_ = tw.Flush()
	return 0
}

// exposure prints a gate's exposure over a range of time.
func (c *cli) exposure(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("exposure", flag.ContinueOnError)
	fs.SetOutput(c.errw)
	fromArg := fs.String("from", "24h", "start: RFC 3339 time, or a duration ago (2h)")
	toArg := fs.String("to", "", "end: RFC 3339 time, or a duration ago (default now)")
	asJSON := fs.Bool("json", false, "write the report as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		return c.usage("exposure takes 1 argument: GATE")
	}
	now := time.Now()
	from, err := when(*fromArg, now)
	if err != nil {
		return c.usage("-from: " + err.Error())
	}
	to := now
	if *toArg != "" {
		if to, err = when(*toArg, now); err != nil {
			return c.usage("-to: " + err.Error())
		}
	}
	if to.Before(from) {
		return c.usage("-to is before -from")
	}
	rctx, cancel := context.WithTimeout(ctx, c.wait)
	defer cancel()
	x, err := fleet.ReadExposure(rctx, c.store, pos[0], from, to)
	if err != nil {
		fmt.Fprintln(c.errw, "blastradius:", err)
		return 1
	}
	if *asJSON {
		return c.json(x)
	}
	fmt.Fprintf(c.out, "exposure of %s (salt %q) from %s to %s", x.Gate, x.Salt, stamp(from), stamp(to))
	if x.Partial {
		fmt.Fprint(c.out, ", PARTIAL: the history's oldest entries were dropped")
	}
	fmt.Fprintln(c.out)
	tw := tabwriter.NewWriter(c.out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tSTATE\tNEW ARM: OK\tERROR\tPANIC\tINVALID\tTIMEOUT\tMISMATCH\tBEGAN WITH")
	for _, w := range x.Windows {
		state := strconv.FormatFloat(w.Percent, 'f', -1, 64) + "% live"
		switch {
		case w.Killed:
			state = "killed"
		case !w.Live:
			state = "not live"
		}
		end := "now"
		if !w.To.IsZero() {
			end = stamp(w.To)
		}
		began := w.Entry.Kind
		if w.Entry.Instance != "" {
			began += " on " + w.Entry.Instance
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", stamp(w.From), end, state, outcomes(w.New), began)
	}
	fmt.Fprintf(tw, "in the range\t\t%d instances\t%s\t\n", len(x.Instances), outcomes(x.New))
	_ = tw.Flush()
	fmt.Fprintf(c.out, "%d failed calls of the new arm sampled in the range", len(x.Failures))
	if x.Unreadable > 0 {
		fmt.Fprintf(c.out, " (%d unreadable records)", x.Unreadable)
	}
	fmt.Fprintln(c.out)
	if len(x.Failures) > 0 {
		tw = tabwriter.NewWriter(c.out, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tINSTANCE\tOUTCOME\tKEY")
		for _, f := range x.Failures {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", stamp(f.At), f.Instance, f.Outcome, f.Key)
		}
		_ = tw.Flush()
	}
	return 0
}

// wasEnabled answers whether a key was routed to the new path at a moment.
func (c *cli) wasEnabled(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("was-enabled", flag.ContinueOnError)
	fs.SetOutput(c.errw)
	instance := fs.String("instance", "", "ask about this instance alone")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 3 {
		return c.usage("was-enabled takes 3 arguments: GATE KEY TIME")
	}
	at, err := when(pos[2], time.Now())
	if err != nil {
		return c.usage("TIME: " + err.Error())
	}
	rctx, cancel := context.WithTimeout(ctx, c.wait)
	defer cancel()
	h, err := fleet.ReadHistory(rctx, c.store, pos[0])
	if err != nil {
		fmt.Fprintln(c.errw, "blastradius:", err)
		return 2
	}
	who, enabled := "some instance", h.WasEnabled(pos[1], at)
	if *instance != "" {
		who, enabled = "instance "+*instance, h.WasEnabledOn(*instance, pos[1], at)
		if !slices.ContainsFunc(h.Entries, func(e fleet.HistoryEntry) bool { return e.Instance == *instance }) {
			fmt.Fprintf(c.errw, "blastradius: instance %s reported no change of %s: answered by the fleet's publishes alone\n", *instance, h.Gate)
		}
	}
	if enabled {
		fmt.Fprintf(c.out, "yes: %s routed %q to the new path of %s at %s (bucket %d of %d)\n",
			who, pos[1], h.Gate, stamp(at), rollout.Bucket(h.Salt, pos[1]), rollout.Buckets)
		return 0
	}
	fmt.Fprintf(c.out, "no: %s did not route %q to the new path of %s at %s, by its history (bucket %d of %d)\n",
		who, pos[1], h.Gate, stamp(at), rollout.Bucket(h.Salt, pos[1]), rollout.Buckets)
	return 1
}

func (c *cli) json(v any) int {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(c.errw, "blastradius:", err)
		return 1
	}
	return 0
}

// when parses an RFC 3339 time, or a duration before now.
func when(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration ago (2h)", s)
	}
	return now.Add(-d), nil
}

// stamp formats a time in UTC to the millisecond.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// outcomes formats the new arm's outcomes as tab-separated columns.
func outcomes(o rollout.OutcomeCounts) string {
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%d", o.OK, o.Error, o.Panic, o.Invalid, o.Timeout, o.Mismatches)
}

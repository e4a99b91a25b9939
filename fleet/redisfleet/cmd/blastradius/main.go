// Command blastradius is the operator's tool for a fleet synced through
// Redis: it kills, resumes and sets gates on every instance, publishes
// config documents, and lists the fleet. Every change waits for the
// instances to apply it and names those that did not; the exit status is 1
// when one did not within -wait, 2 for a usage error.
//
//	blastradius -redis 127.0.0.1:6379 kill checkout-v2 -reason INC-42
//	blastradius -redis 127.0.0.1:6379 resume checkout-v2
//	blastradius -redis 127.0.0.1:6379 set checkout-v2 12.5
//	blastradius -redis 127.0.0.1:6379 publish config.json
//	blastradius -redis 127.0.0.1:6379 fleet
//
// -redis takes host:port or a redis:// or rediss:// URL (with user,
// password and database); -prefix is the key namespace the instances use.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet"
)

const usage = `usage: blastradius -redis ADDR [-prefix P] [-wait 5s] [-actor NAME] COMMAND

commands:
  kill GATE -reason R   kill GATE on every instance
  resume GATE           resume GATE on every instance
  set GATE PERCENT      set GATE's percent (0 to 100) on every instance
  publish FILE          publish a rollout config document (- for stdin)
  fleet                 list the instances and what is wrong with them
`

func main() {
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
	redis.SetLogger(quietLogger{})
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
	if err != nil {
		fmt.Fprintln(c.errw, "blastradius:", err)
		return 1
	}
	fmt.Fprintf(c.out, "%s: version %d of epoch %s\n", what, p.Version, p.Epoch)
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

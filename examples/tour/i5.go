package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/rollout"
)

// I5, Knight Capital 2012: new code reached 7 of 8 servers. It reused an
// old flag for the new Retail Liquidity Program; the 8th server, still on
// the old build, read that flag as "run Power Peg", code dead for years.
// There was no kill switch: 45 minutes until the servers were stopped by
// hand.
//
// Without blastradius: flags are a map from the config document, whatever
// names it holds, and nothing stops all eight at once.
//
// With blastradius: 8 instances, each with its own rollout.Registry and
// fleet.Syncer, sync from one store. Seven run the new build (gates "smars",
// the order router, and "rlp"; "power-peg" is a tombstone); the 8th runs the
// old build ("smars" and "power-peg") and boots from its stale document.
// The new document is in the store: the old build refuses it whole, since it
// names a gate that build does not have, instead of misreading it, and the
// fleet view flags that instance. Each instance handles 1,000 orders; then
// one kill of "smars" through the store stops all eight, the stale one
// included.

const (
	i5Instances = 8
	i5Orders    = 1000
	i5Stale     = "i7"    // the instance on the old build
	i5Killed    = "smars" // the gate every build has: the order router
	i5NewBuild  = "2012-08-01"
	i5OldBuild  = "2012-07-31"
	// i5Knight is how long Knight's servers ran before they were stopped.
	i5Knight = 45 * time.Minute
	// i5Bound is how long the kill may take to reach all 8: generous, for
	// a loaded machine and a real Redis (a few milliseconds are typical).
	i5Bound = time.Second
	// i5Sync bounds each wait on the fleet: boot, and Publisher.Wait.
	i5Sync = 10 * time.Second
)

var (
	// i5KnightDoc is the document Knight shipped: the new feature behind
	// the old flag's name.
	i5KnightDoc = `{"version":"2012-08-01","gates":[{"name":"power-peg","percent":100}]}`
	// i5NewDoc is the same rollout with blastradius: a new gate of its own.
	i5NewDoc   = `{"version":"2012-08-01","gates":[{"name":"smars","percent":100},{"name":"rlp","percent":100}]}`
	i5StaleDoc = `{"version":"2012-07-31","gates":[{"name":"smars","percent":100},{"name":"power-peg","percent":0}]}`
)

// quietLog keeps the Syncers' logs from interleaving with the table.
var quietLog = slog.New(slog.DiscardHandler)

// i5Naive is a server without blastradius: flags are a map from the config
// document, whatever names it holds. The new build reads "power-peg" as
// the new feature; the old build reads it as Power Peg.
func i5Naive(doc string, oldBuild bool) (deadCode int) {
	var cfg struct {
		Gates []struct {
			Name    string  `json:"name"`
			Percent float64 `json:"percent"`
		} `json:"gates"`
	}
	_ = json.Unmarshal([]byte(doc), &cfg)
	flags := map[string]bool{}
	for _, g := range cfg.Gates {
		flags[g.Name] = g.Percent > 0
	}
	for range i5Orders {
		if oldBuild && flags["power-peg"] { // the dead code path, woken by the reused flag
			deadCode++
		}
	}
	return deadCode
}

// i5Instance is one instance with blastradius.
type i5Instance struct {
	id       string
	smars    *rollout.Gate
	peg      *rollout.Gate // the old build's Power Peg; nil on the new build
	s        *fleet.Syncer
	killedAt atomic.Int64 // unix nanos of the first apply that left smars killed
}

// i5New builds an instance on the new build, or on the old one (which
// boots from its stale document).
func i5New(store fleet.Store, id string, old bool) (*i5Instance, error) {
	reg, err := quietRegistry()
	if err != nil {
		return nil, err
	}
	gate := func(name string) (*rollout.Gate, error) {
		g, err := rollout.New(name, quietGate)
		if err != nil {
			return nil, err
		}
		return g, reg.Register(g)
	}
	in := &i5Instance{id: id}
	if in.smars, err = gate("smars"); err != nil {
		return nil, err
	}
	build := i5NewBuild
	if old {
		build = i5OldBuild
		if in.peg, err = gate("power-peg"); err != nil {
			return nil, err
		}
		if _, err := reg.LoadConfig(strings.NewReader(i5StaleDoc)); err != nil {
			return nil, err
		}
	} else {
		if _, err := gate("rlp"); err != nil {
			return nil, err
		}
		if err := reg.Retire("power-peg", "repurposing a flag woke dead code at Knight"); err != nil {
			return nil, err
		}
	}
	in.s, err = fleet.New(store, reg,
		fleet.WithInstanceID(id), fleet.WithHost("server-"+id[1:]), fleet.WithBuild(build),
		fleet.WithLogger(quietLog), fleet.WithOnApply(in.applied))
	return in, err
}

// applied is the Syncer's OnApply: it notes when smars is first killed.
func (in *i5Instance) applied(st fleet.Instance) {
	if g, ok := st.Gate(i5Killed); ok && g.Killed {
		in.killedAt.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// orders routes 1,000 orders and counts those that ran Power Peg.
func (in *i5Instance) orders() (deadCode int) {
	for i := range i5Orders {
		key := "order-" + strconv.Itoa(i)
		if in.smars.Enabled(key) && in.peg != nil && in.peg.Enabled(key) {
			deadCode++
		}
	}
	return deadCode
}

// routing reports whether the instance still routes any order.
func (in *i5Instance) routing() bool {
	for k := range 10_000 {
		if in.smars.Enabled("order-" + strconv.Itoa(k)) {
			return true
		}
	}
	return false
}

func runI5(ctx context.Context, cfg config) ([]figure, error) {
	naiveDead := 0
	for i := range i5Instances {
		naiveDead += i5Naive(i5KnightDoc, i == i5Instances-1)
	}
	store, where, cleanup, err := fleetStore(ctx, cfg.redis)
	if err != nil {
		return nil, err
	}
	figs, err := i5Fleet(ctx, cfg, store, where, naiveDead)
	return figs, errors.Join(err, cleanup())
}

// i5Fleet runs the incident with blastradius on store; every Syncer has
// stopped when it returns.
func i5Fleet(ctx context.Context, cfg config, store fleet.Store, where string, naiveDead int) ([]figure, error) {
	op, err := fleet.NewPublisher(store, fleet.WithActor("oncall@knight"), fleet.WithPollInterval(2*time.Millisecond))
	if err != nil {
		return nil, err
	}
	// The rollout: the new document is in the store when the fleet boots.
	if _, err := op.PublishConfig(ctx, []byte(i5NewDoc)); err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
	}()
	instances := make([]*i5Instance, i5Instances)
	var synced []*i5Instance
	for i := range instances {
		id := "i" + strconv.Itoa(i)
		in, err := i5New(store, id, id == i5Stale)
		if err != nil {
			return nil, err
		}
		instances[i] = in
		if cfg.sabotage == "I5" && id == i5Stale {
			continue // the tour's own failure test: the stale server is not on the store, as at Knight
		}
		synced = append(synced, in)
		wg.Go(func() { _ = in.s.Run(rctx) })
	}
	bctx, cancel := context.WithTimeout(ctx, i5Sync)
	defer cancel()
	for _, in := range synced {
		select {
		case <-in.s.Ready():
		case <-bctx.Done():
			return nil, fmt.Errorf("instance %s did not sync from %s within %v", in.id, where, i5Sync)
		}
	}

	// The fleet view: which instance runs what.
	view, err := fleet.List(ctx, store)
	if err != nil {
		return nil, err
	}
	var flagged []fleet.Member
	for _, m := range view.Instances {
		if len(m.Problems) > 0 {
			flagged = append(flagged, m)
			*cfg.notes = append(*cfg.notes, fmt.Sprintf("I5: the fleet view flags %s (build %s, config %s): %s",
				m.ID, m.Build, m.Config.Version, strings.Join(m.Problems, "; ")))
		}
	}
	staleFlagged := len(flagged) == 1 && flagged[0].ID == i5Stale && flagged[0].Refusing

	dead := 0
	for _, in := range instances {
		dead += in.orders()
	}

	// One kill, published once to the store.
	start := time.Now()
	pub, err := op.Kill(ctx, i5Killed, "INC-5: runaway orders")
	if err != nil {
		return nil, err
	}
	wctx, cancelWait := context.WithTimeout(ctx, i5Sync)
	defer cancelWait()
	acks, err := op.Wait(wctx, pub)
	if err != nil {
		return nil, err
	}
	confirmed := time.Since(start)
	var reached time.Duration
	applied := 0
	for _, in := range instances {
		if at := in.killedAt.Load(); at != 0 {
			applied++
			reached = max(reached, time.Unix(0, at).Sub(start))
		}
	}
	reachedAll := applied == i5Instances
	if !reachedAll {
		reached = confirmed // it never reached all 8: show how long the operator waited
	}
	stopped := 0
	for _, in := range instances {
		if !in.routing() {
			stopped++
		}
	}
	*cfg.notes = append(*cfg.notes, fmt.Sprintf("I5: one kill of %s through %s: applied by %d of %d instances, the last %.1f ms after the publish; Publisher.Wait confirmed %d applied, %d lagging in %.1f ms",
		i5Killed, where, applied, i5Instances, ms(reached), len(acks.Applied), len(acks.Lagging), ms(confirmed)))

	return []figure{
		{Name: "orders run through dead code", Without: float64(naiveDead), With: float64(dead), Unit: "orders", Target: "0", Pass: dead == 0},
		{Name: "stale instance flagged by the fleet view", Without: 0, With: float64(len(flagged)), Unit: "instances", Target: "1 (" + i5Stale + ")", Pass: staleFlagged},
		{Name: "instances stopped by one kill", Without: 0, With: float64(stopped), Unit: "instances", Target: fmt.Sprintf("%d of %d", i5Instances, i5Instances), Pass: stopped == i5Instances},
		{Name: "time for one kill to reach all 8 (without: 45 min, no kill switch)", Without: i5Knight.Seconds(), With: reached.Seconds(), Unit: "s", Target: fmt.Sprintf("<= %v", i5Bound.Seconds()), Pass: reachedAll && reached <= i5Bound},
	}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

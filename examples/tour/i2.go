package main

import (
	"context"
	"strconv"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

// I2: a one-line change made a lookup return null where it used to return
// an entity. It shipped at night; alerts went unseen; payments broke.
//
// Here the new lookup returns nil for 3% of users. The gate ramps
// 1% → 5% → 25% → 100% with one-hour holds, under a fake clock at a steady
// 20 calls per second, for six simulated hours. Without blastradius nothing
// watches the new path; with it, a guard compares the new arm with the old
// one on the same traffic and kills the gate on its own. The same lookup then
// runs on a fleet of 8 instances under one fleet guard (i2fleet.go).

type i2Account struct{ ID, Plan string }

const (
	i2Rate  = 20 // calls per simulated second
	i2Hours = 6
)

func i2Old(_ context.Context, user string) (*i2Account, error) {
	return &i2Account{ID: user, Plan: "pro"}, nil
}

// i2New is the bad change: nil for 3% of users.
func i2New(ctx context.Context, user string) (*i2Account, error) {
	if rollout.Bucket("i2-null", user) < 30_000 {
		return nil, nil
	}
	return i2Old(ctx, user)
}

type i2Result struct {
	bad, calls int
	killed     bool
	killedBy   string
	percent    float64 // the gate's percent when the run ended (or was killed)
	reached    float64 // the highest percent the gate reached
	minutes    float64 // simulated minutes until the kill
	reason     string
}

// i2Replay runs the ramp. mode is "run" (serve the routed arm), "shadow"
// (serve old, compare new), or "none" (no guard: the ramp goes on).
func i2Replay(ctx context.Context, mode string, guard bool) (i2Result, error) {
	start := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC) // 2am, as in the incident
	clock := start
	opts := []rollout.Option{
		rollout.WithClock(func() time.Time { return clock }),
		rollout.WithSchedule(
			rollout.Step{Percent: 1, Hold: time.Hour},
			rollout.Step{Percent: 5, Hold: time.Hour},
			rollout.Step{Percent: 25, Hold: time.Hour},
			rollout.Step{Percent: 100}),
		quietGate,
	}
	if guard {
		opts = append(opts, rollout.WithGuard())
	}
	gate, err := rollout.New("account-lookup-v2", opts...)
	if err != nil {
		return i2Result{}, err
	}
	lookup, err := rollout.NewPath(gate, i2Arms())
	if err != nil {
		return i2Result{}, err
	}
	var r i2Result
	tick := time.Second / i2Rate
	for ; r.calls < i2Hours*3600*i2Rate; r.calls++ {
		if gate.Status().Killed {
			break
		}
		user := "user-" + strconv.Itoa(r.calls*7919%10_000_000)
		var a *i2Account
		var err error
		if mode == "shadow" {
			a, err = lookup.Shadow(ctx, user, user)
		} else {
			a, err = lookup.Run(ctx, user, user)
		}
		if a == nil || err != nil {
			r.bad++
		}
		r.reached = max(r.reached, gate.Status().Percent)
		clock = clock.Add(tick)
	}
	st := gate.Status()
	r.killed, r.killedBy, r.percent, r.reason = st.Killed, st.KilledBy, st.Percent, st.Reason
	r.minutes = clock.Sub(start).Minutes()
	return r, nil
}

func runI2(ctx context.Context, cfg config) ([]figure, error) {
	guard := cfg.sabotage != "I2" // the tour's own failure test: no guard
	without, err := i2Replay(ctx, "run", false)
	if err != nil {
		return nil, err
	}
	run, err := i2Replay(ctx, "run", guard)
	if err != nil {
		return nil, err
	}
	shadow, err := i2Replay(ctx, "shadow", guard)
	if err != nil {
		return nil, err
	}
	killedByGuard := run.killed && run.killedBy == rollout.KilledByGuard
	contained := killedByGuard && run.reached < 5
	minutes := run.minutes
	if !run.killed {
		minutes = float64(i2Hours * 60)
	}
	var killed float64
	if killedByGuard {
		killed = 1
	}
	figs := []figure{
		{Name: "gate killed by the guard, no human", Without: 0, With: killed, Unit: "yes=1", Target: "1", Pass: killedByGuard},
		{Name: "highest percent reached", Without: without.reached, With: run.reached, Unit: "%", Target: "< 5", Pass: contained},
		{Name: "users who got a nil account (Run)", Without: float64(without.bad), With: float64(run.bad), Unit: "users", Target: "<= 50", Pass: contained && run.bad <= 50},
		{Name: "users who got a nil account (Shadow)", Without: float64(without.bad), With: float64(shadow.bad), Unit: "users", Target: "0", Pass: shadow.killed && shadow.bad == 0},
		{Name: "calls until the kill (Run)", Without: float64(without.calls), With: float64(run.calls), Unit: "calls", Target: "killed", Pass: run.killed},
		{Name: "simulated minutes until the kill", Without: float64(i2Hours * 60), With: minutes, Unit: "min", Target: "killed", Pass: run.killed},
	}
	if run.reason != "" {
		*cfg.notes = append(*cfg.notes, "I2: the guard's kill reason: "+run.reason)
	}
	fleetFigs, err := runI2Fleet(ctx, cfg)
	return append(figs, fleetFigs...), err
}

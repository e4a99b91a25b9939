package main

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/blastradius/blastradius/rollout"
)

// I5, Knight Capital 2012: new code reached 7 of 8 servers, a flag name was
// repurposed, and the 8th server read the flag as "run Power Peg", code dead
// for years. There was no kill switch.
//
// Here all 8 instances run the new code, in which the Power Peg path was
// never deleted. Seven load the new config; the 8th loads a stale one that
// names the old flag. Each instance then handles 1,000 orders.

const (
	i5Instances = 8
	i5Orders    = 1000
)

var (
	i5NewConfig   = `{"version":"2012-08-01","gates":[{"name":"rlp","percent":100}]}`
	i5StaleConfig = `{"version":"2012-07-31-stale","gates":[{"name":"power-peg","percent":100}]}`
	i5Initial     = `{"version":"2012-07-30","gates":[{"name":"rlp","percent":0}]}`
)

// i5Naive is an instance without blastradius: flags are a map from the
// config document, whatever names it holds.
func i5Naive(doc string) (deadCode int) {
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
		if flags["power-peg"] { // the dead code path, woken by the repurposed flag
			deadCode++
		}
	}
	return deadCode
}

type i5Instance struct {
	reg   *rollout.Registry
	rlp   *rollout.Gate
	peg   *rollout.Gate // nil when power-peg is retired, as it should be
	admin string
	close func()
}

// i5New builds an instance with blastradius: "rlp" is registered, and
// "power-peg" is a tombstone so it can never be repurposed.
func i5New(sabotage bool) (*i5Instance, error) {
	reg, err := quietRegistry()
	if err != nil {
		return nil, err
	}
	rlp, err := rollout.New("rlp", quietGate)
	if err != nil {
		return nil, err
	}
	if err := reg.Register(rlp); err != nil {
		return nil, err
	}
	in := &i5Instance{reg: reg, rlp: rlp}
	if sabotage { // the tour's own failure test: the old flag is still live
		if in.peg, err = rollout.New("power-peg", quietGate); err != nil {
			return nil, err
		}
		if err := reg.Register(in.peg); err != nil {
			return nil, err
		}
	} else if err := reg.Retire("power-peg", "repurposing a flag woke dead code at Knight"); err != nil {
		return nil, err
	}
	if _, err := reg.LoadConfig(strings.NewReader(i5Initial)); err != nil {
		return nil, err
	}
	srv := adminServer(reg)
	in.admin, in.close = srv.URL, srv.Close
	return in, nil
}

func (in *i5Instance) orders() (deadCode int) {
	for i := range i5Orders {
		if in.peg != nil && in.peg.Enabled("order-"+strconv.Itoa(i)) {
			deadCode++
		}
	}
	return deadCode
}

func runI5(ctx context.Context, cfg config) ([]figure, error) {
	// Without: 7 instances read the flag as the new feature, the 8th as
	// Power Peg.
	naiveDead := 0
	for i := range i5Instances {
		doc := i5NewConfig
		if i == i5Instances-1 {
			doc = i5StaleConfig
		}
		naiveDead += i5Naive(doc)
	}

	// With: registries, tombstones, whole-document rejection, config hashes.
	fleet := make([]*i5Instance, i5Instances)
	for i := range fleet {
		in, err := i5New(cfg.sabotage == "I5")
		if err != nil {
			return nil, err
		}
		defer in.close()
		fleet[i] = in
	}
	rejected := 0
	for i, in := range fleet {
		doc := i5NewConfig
		if i == i5Instances-1 {
			doc = i5StaleConfig
		}
		_, err := in.reg.LoadConfig(strings.NewReader(doc))
		var ce *rollout.ConfigError
		switch {
		case errors.As(err, &ce) && errors.Is(err, rollout.ErrRetired):
			rejected++
		case err != nil:
			return nil, err
		}
	}
	dead := 0
	hashes := map[string]int{}
	for _, in := range fleet {
		dead += in.orders()
		hashes[in.reg.Config().Hash]++
	}
	// The odd one out: instances whose hash differs from the majority's.
	majority := 0
	for _, n := range hashes {
		majority = max(majority, n)
	}
	visible := i5Instances - majority

	// One kill, fanned out to every instance's admin handler at once.
	var wg sync.WaitGroup
	errs := make([]error, len(fleet))
	for i, in := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = adminPost(ctx, in.admin, "rlp/kill", `{"reason":"INC-5"}`)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	running := 0
	for _, in := range fleet {
		for k := range 10_000 {
			if in.rlp.Enabled("order-" + strconv.Itoa(k)) {
				running++
				break
			}
		}
	}
	return []figure{
		{Name: "orders run through dead code", Without: float64(naiveDead), With: float64(dead), Unit: "orders", Target: "0", Pass: dead == 0},
		{Name: "stale configs rejected (retired flag)", Without: 0, With: float64(rejected), Unit: "instances", Target: "1", Pass: rejected == 1},
		{Name: "stale instance visible by config hash", Without: 0, With: float64(visible), Unit: "instances", Target: "1", Pass: visible == 1},
		{Name: "instances running new code after one kill", Without: i5Instances, With: float64(running), Unit: "instances", Target: "0", Pass: running == 0},
	}, nil
}

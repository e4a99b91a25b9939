package fleet_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/rollout"
)

// instance starts one service instance: a registry with a gate, kept in
// line with the store by a Syncer. stop ends it.
func instance(store fleet.Store, id string, gates ...string) (reg *rollout.Registry, stop func()) {
	reg, _ = rollout.NewRegistry()
	for _, name := range gates {
		g, _ := rollout.New(name, rollout.WithPercent(100))
		_ = reg.Register(g)
	}
	s, _ := fleet.New(store, reg, fleet.WithInstanceID(id), fleet.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = s.Run(ctx)
		close(done)
	}()
	<-s.Ready()
	return reg, func() { cancel(); <-done }
}

// One kill, published through the store, stops a gate on every instance,
// and Wait names the instances that applied it.
func Example() {
	store := fleet.NewMemoryStore() // or redisfleet.New(redisClient)
	var stops []func()
	var regs []*rollout.Registry
	for _, id := range []string{"api-1", "api-2", "api-3"} {
		reg, stop := instance(store, id, "checkout-v2")
		regs, stops = append(regs, reg), append(stops, stop)
	}

	p, _ := fleet.NewPublisher(store, fleet.WithActor("oncall"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pub, err := p.Kill(ctx, "checkout-v2", "INC-42: payment errors")
	if err != nil {
		fmt.Println(err)
		return
	}
	acks, _ := p.Wait(ctx, pub)
	for _, m := range acks.Applied {
		fmt.Println("applied on", m.ID, "at version", m.Applied.Version)
	}
	for _, reg := range regs {
		g, _ := reg.Gate("checkout-v2")
		fmt.Println(g.Enabled("user-1"), g.Status().Reason)
	}
	for _, stop := range stops {
		stop()
	}
	// Output:
	// applied on api-1 at version 1
	// applied on api-2 at version 1
	// applied on api-3 at version 1
	// false INC-42: payment errors
	// false INC-42: payment errors
	// false INC-42: payment errors
}

// The fleet view flags an instance whose build does not know a gate of the
// published document: it refuses the document and keeps its old config.
func ExampleList() {
	store := fleet.NewMemoryStore()
	_, stop1 := instance(store, "api-1", "checkout-v2", "router-v4")
	_, stop2 := instance(store, "api-2", "checkout-v2") // an older build
	defer stop1()
	defer stop2()

	p, _ := fleet.NewPublisher(store)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pub, _ := p.PublishConfig(ctx, []byte(`{"version":"2026-11-22.1","gates":[{"name":"router-v4","percent":1}]}`))
	_, _ = p.Wait(ctx, pub)

	v, _ := fleet.List(ctx, store)
	for _, m := range v.Instances {
		fmt.Printf("%s current=%v refusing=%v config=%q\n", m.ID, m.Current(), m.Refusing, m.Config.Version)
		for _, p := range m.Problems {
			fmt.Println("  ", p[:strings.Index(p, ":")])
		}
	}
	// Output:
	// api-2 current=false refusing=true config=""
	//    config differs
	//    refuses config version 1
	// api-1 current=true refusing=false config="2026-11-22.1"
}

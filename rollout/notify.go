package rollout

import (
	"slices"
	"sync"
	"sync/atomic"
)

// subscriber is one OnChange callback.
type subscriber struct{ f func(name string) }

// notifier is a Registry's list of OnChange subscribers, copied on write,
// so that a change reads it without a lock.
type notifier struct {
	mu   sync.Mutex // serializes writers
	subs atomic.Pointer[[]*subscriber]
}

// OnChange calls f after every change of the state of a gate of the
// registry, with the gate's name: a kill, resume or percent (by a call, the
// admin handler, a fleet, the guard's verdict or a config), a schedule
// step, and the registration of a gate. A config that LoadConfig applies
// calls f once for each gate it changed, then once with name "" for the
// registry's config itself (Registry.Config), after LoadConfig's lock is
// released; Retire calls f with the retired name.
//
// f is called on the goroutine that made the change (for a schedule step,
// possibly a caller of Enabled), after the change, with no lock held, so it
// may call any method of the gate or the registry. It must not block:
// signal a channel or set a flag. Several subscribers may be registered;
// each is called in turn. stop unsubscribes f: changes that begin after
// stop returns no longer call it (one in progress at that moment may).
// Enabled costs nothing more for it: it changes nothing.
func (r *Registry) OnChange(f func(name string)) (stop func()) {
	if f == nil {
		return func() {}
	}
	s := &subscriber{f}
	n := &r.notify
	n.mu.Lock()
	next := append(slices.Clone(n.load()), s)
	n.subs.Store(&next)
	n.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			n.mu.Lock()
			next := slices.DeleteFunc(slices.Clone(n.load()), func(x *subscriber) bool { return x == s })
			n.subs.Store(&next)
			n.mu.Unlock()
		})
	}
}

func (n *notifier) load() []*subscriber {
	if p := n.subs.Load(); p != nil {
		return *p
	}
	return nil
}

// changed calls the subscribers with name. No lock may be held.
func (r *Registry) changed(name string) {
	for _, s := range r.notify.load() {
		s.f(name)
	}
}

// notify tells the registries the gate is registered in that it changed.
// g.mu must not be held.
func (g *Gate) notify() {
	if p := g.regs.Load(); p != nil {
		for _, r := range *p {
			r.changed(g.name)
		}
	}
}

// addRegistry records that r holds g, so that g's changes notify r.
func (g *Gate) addRegistry(r *Registry) {
	g.mu.Lock()
	var regs []*Registry
	if p := g.regs.Load(); p != nil {
		regs = slices.Clone(*p)
	}
	regs = append(regs, r)
	g.regs.Store(&regs)
	g.mu.Unlock()
}

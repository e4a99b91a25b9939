package fleet

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blastradius/blastradius/logbudget"
	"github.com/blastradius/blastradius/rollout"
)

// ErrRunning is returned by a second concurrent call of Syncer.Run or
// Guard.Run.
var ErrRunning = errors.New("fleet: already running")

// Retry delays of a failed read: doubling from retryMin up to retryMax,
// each drawn between half and all of it.
const (
	retryMin = 50 * time.Millisecond
	retryMax = 500 * time.Millisecond
)

// Syncer applies a Store's state to a rollout.Registry and heartbeats the
// instance's state to the store. Run does the work; Status reports it.
type Syncer struct {
	store Store
	reg   *rollout.Registry
	cfg   config
	log   *slog.Logger // state changes
	noisy *slog.Logger // repeated messages, through the log budget
	m     *metrics

	wake      chan struct{}
	beat      chan struct{} // a gate changed: heartbeat now
	ready     chan struct{}
	readyOnce sync.Once
	running   atomic.Bool
	subs      atomic.Int64
	started   time.Time

	seen map[string]uint64 // record versions handled in the applied epoch; Run's goroutine only

	mu          sync.Mutex // guards the fields below
	applied     Head
	source      string
	rejected    *Rejection
	lastContact time.Time // the Syncer's start until the first contact
	contacted   bool
	storeErr    string
	staleLogged bool
	guards      []*Guard // running Guards WithSyncer(s), reported in the heartbeat
}

// New returns a Syncer that applies store's state to reg. It does nothing
// until Run. A nil option is skipped. Errors wrap ErrInvalidConfig and name
// the option and its value.
func New(store Store, reg *rollout.Registry, opts ...Option) (*Syncer, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	if reg == nil {
		return nil, fmt.Errorf("%w: nil registry", ErrInvalidConfig)
	}
	c := config{heartbeat: DefaultHeartbeatInterval, reconcile: DefaultReconcileInterval, timeout: DefaultTimeout}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&c); err != nil {
			return nil, err
		}
	}
	if c.ttl == 0 {
		c.ttl = 3 * c.heartbeat
	}
	if c.staleAfter == 0 {
		c.staleAfter = 3 * c.heartbeat
	}
	if c.ttl <= c.heartbeat {
		return nil, invalid("WithHeartbeatTTL", c.ttl, fmt.Sprintf("must exceed the heartbeat interval %v", c.heartbeat))
	}
	if c.host == "" {
		c.host, _ = os.Hostname()
	}
	if c.id == "" {
		c.id = defaultID(c.host)
	}
	if c.build == "" {
		c.build = buildVersion()
	}
	if c.now == nil {
		c.now = time.Now
	}
	s := &Syncer{
		store:   store,
		reg:     reg,
		cfg:     c,
		log:     cmp.Or(c.logger, slog.Default()),
		wake:    make(chan struct{}, 1),
		beat:    make(chan struct{}, 1),
		ready:   make(chan struct{}),
		started: c.now(),
		seen:    make(map[string]uint64),
	}
	s.lastContact = s.started
	// The options are valid, so For cannot fail.
	budget, _ := logbudget.For(c.logger, logbudget.WithKeyAttr("reason"), logbudget.WithMeterProvider(c.mp))
	s.noisy = slog.New(budget)
	s.m = newMetrics(c.mp, s)
	return s, nil
}

// defaultID is the host name and a random suffix.
func defaultID(host string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return cmp.Or(host, "instance") + "-" + hex.EncodeToString(b[:])
}

// buildVersion is the main module's version and VCS revision, if known.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}

// ID returns the instance id the Syncer heartbeats under.
func (s *Syncer) ID() string { return s.cfg.id }

// Ready returns a channel that is closed once the Syncer has applied a
// state, from the store (and tried to heartbeat it) or from the cache file.
func (s *Syncer) Ready() <-chan struct{} { return s.ready }

// Run syncs until ctx is done, then writes a last heartbeat that marks the
// instance stopped and returns ctx.Err(). It heartbeats every interval and
// right after every change of a gate of the registry (Registry.OnChange),
// so a local kill shows in the fleet view at once. It reads the store at once, on
// every notification and (re)subscription, after every heartbeat that shows
// a head it has not applied, and on a jittered reconcile; a failed read is
// retried within half a second. While the store cannot be reached, the
// registry keeps its last good state: Run changes nothing, and the instance
// reports itself stale once WithStaleAfter has passed. Run returns
// ErrRunning if the Syncer is already running.
func (s *Syncer) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	// A change made on this instance (its admin handler, its guard, its
	// schedule) reaches the fleet view at once, not at the next heartbeat.
	defer s.reg.OnChange(func(string) { s.heartbeatSoon() })()
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.subscribe(sctx)
	}()
	s.loop(sctx)
	return ctx.Err()
}

// subscribe keeps a subscription open until ctx is done.
func (s *Syncer) subscribe(ctx context.Context) {
	for n := 0; ; n++ {
		err := s.store.Subscribe(ctx, s.notify)
		if ctx.Err() != nil {
			return
		}
		s.storeError(opSubscribe, err)
		t := time.NewTimer(retryDelay(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// notify is the Store's callback: it wakes the loop, never blocking.
func (s *Syncer) notify(e Event) {
	if e == Subscribed && s.subs.Add(1) > 1 {
		s.m.reconnects.Add(context.Background(), 1, s.m.none...)
	}
	s.signal()
}

// heartbeatSoon makes Run heartbeat at once; it never blocks.
func (s *Syncer) heartbeatSoon() {
	select {
	case s.beat <- struct{}{}:
	default:
	}
}

func (s *Syncer) addGuard(g *Guard) {
	s.mu.Lock()
	s.guards = append(s.guards, g)
	s.mu.Unlock()
	s.heartbeatSoon()
}

func (s *Syncer) removeGuard(g *Guard) {
	s.mu.Lock()
	s.guards = slices.DeleteFunc(s.guards, func(x *Guard) bool { return x == g })
	s.mu.Unlock()
	s.heartbeatSoon()
}

func (s *Syncer) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func retryDelay(n int) time.Duration {
	d := retryMin << min(n, 8)
	d = min(d, retryMax)
	return d/2 + mrand.N(d/2+1)
}

func (s *Syncer) jitter() time.Duration {
	d := s.cfg.reconcile
	return d*4/5 + mrand.N(d*2/5+1)
}

func (s *Syncer) loop(ctx context.Context) {
	if err := s.sync(ctx); err != nil && s.cfg.cacheFile != "" {
		s.bootFromCache()
	}
	s.heartbeat(ctx, false)

	hb := time.NewTicker(s.cfg.heartbeat)
	defer hb.Stop()
	reconcile := time.NewTimer(s.jitter())
	defer reconcile.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	failures := 0
	if s.failing() {
		failures = 1
		retry.Reset(retryDelay(0))
	}
	for {
		select {
		case <-ctx.Done():
			// The last heartbeat marks the instance stopped; ctx is done,
			// so it gets a fresh deadline of its own.
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.timeout)
			s.heartbeat(hctx, true)
			cancel()
			return
		case <-hb.C:
			s.heartbeat(ctx, false)
			s.checkStale()
			continue
		case <-s.beat:
			s.heartbeat(ctx, false)
			continue
		case <-s.wake:
		case <-reconcile.C:
			reconcile.Reset(s.jitter())
		case <-retry.C:
		}
		if err := s.sync(ctx); err != nil {
			if ctx.Err() != nil {
				continue
			}
			retry.Reset(retryDelay(failures))
			failures++
		} else {
			retry.Stop()
			failures = 0
		}
		s.checkStale()
	}
}

func (s *Syncer) failing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storeErr != ""
}

// sync reads the store and applies what is new.
func (s *Syncer) sync(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	snap, err := s.store.Read(rctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.storeError(opRead, err)
		}
		return err
	}
	s.contact()
	if s.apply(snap, SourceStore) {
		s.saveCache(snap)
		s.afterApply(ctx)
	}
	return nil
}

func (s *Syncer) afterApply(ctx context.Context) {
	if s.cfg.onApply != nil {
		s.cfg.onApply(s.Status())
	}
	s.heartbeat(ctx, false)
	s.readyOnce.Do(func() { close(s.ready) })
}

// apply applies the records of snap that are new to the instance, in
// version order, and reports whether the applied head moved. Only Run's
// goroutine calls it.
func (s *Syncer) apply(snap Snapshot, source string) bool {
	s.mu.Lock()
	prev := s.applied
	first := s.source == ""
	s.mu.Unlock()

	switch {
	case snap.Epoch == "":
		// Nothing published, or the store lost its data: keep the state.
		if prev.Epoch != "" {
			s.log.Warn("fleet: the store has no epoch (its data was lost); keeping the last good state until the next publish",
				"applied_epoch", prev.Epoch, "applied_version", prev.Version)
		}
		clear(s.seen)
		s.setApplied(snap.Head, source)
		return first || prev != snap.Head
	case snap.Epoch != prev.Epoch:
		if prev.Epoch != "" {
			s.log.Warn("fleet: the store has a new epoch (its data was lost and rebuilt); ordering starts again",
				"epoch", snap.Epoch, "previous_epoch", prev.Epoch, "previous_version", prev.Version)
		}
		clear(s.seen)
	case snap.Version < prev.Version:
		// The same epoch went back (a restored backup): applying its
		// older records would regress the state. Keep the state and take
		// the store's records as the new baseline, so later publishes apply.
		s.log.Warn("fleet: the store's version went back within its epoch; keeping the current state",
			"epoch", snap.Epoch, "version", snap.Version, "applied_version", prev.Version)
		clear(s.seen)
		for _, r := range snap.Records {
			s.seen[r.Key] = r.Version
		}
		s.setApplied(snap.Head, source)
		return true
	case snap.Version == prev.Version:
		return false
	}

	recs := slices.Clone(snap.Records)
	slices.SortFunc(recs, func(a, b Record) int { return cmp.Compare(a.Version, b.Version) })
	for _, r := range recs {
		if r.Version <= s.seen[r.Key] {
			continue
		}
		s.seen[r.Key] = r.Version
		s.applyRecord(snap.Epoch, r)
	}
	s.setApplied(snap.Head, source)
	return true
}

func (s *Syncer) setApplied(h Head, source string) {
	s.mu.Lock()
	s.applied, s.source = h, source
	s.mu.Unlock()
}

// applyRecord applies one record. A kill, resume or percent of a gate the
// registry does not have is not for this instance and is skipped.
func (s *Syncer) applyRecord(epoch string, r Record) {
	op, err := parseRecord(r.Key, r.Value)
	if err != nil {
		s.reject(epoch, r, opUnknown, err)
		return
	}
	switch op.Op {
	case OpConfig:
		if _, err := s.reg.LoadConfig(bytes.NewReader(op.Config)); err != nil {
			s.reject(epoch, r, op.Op, err)
			return
		}
	default:
		g, ok := s.reg.Gate(op.Gate)
		if !ok {
			s.noisy.Debug("fleet: record for a gate this instance does not have", attrOp, op.Op, "gate", op.Gate, "version", r.Version)
			return
		}
		// Applied on behalf of the fleet: Status.KilledBy and the gate's
		// History say "fleet".
		var err error
		switch op.Op {
		case OpKill:
			err = g.KillBy(rollout.KilledByFleet, cmp.Or(op.Reason, "killed through the fleet store"))
		case OpResume:
			err = g.ResumeBy(rollout.KilledByFleet)
		case OpPercent:
			err = g.SetPercentBy(rollout.KilledByFleet, *op.Percent)
		}
		if err != nil {
			s.reject(epoch, r, op.Op, err)
			return
		}
	}
	var lat time.Duration
	if !r.Published.IsZero() {
		lat = s.cfg.now().Sub(r.Published)
	}
	s.m.apply(op.Op, lat, !r.Published.IsZero())
	s.noisy.Info("fleet: applied", attrOp, op.Op, "gate", op.Gate, "reason", op.Reason,
		"epoch", epoch, "version", r.Version, "by", op.By)
}

func (s *Syncer) reject(epoch string, r Record, op string, err error) {
	s.m.rejections.Add(context.Background(), 1, s.m.opts(op)...)
	s.mu.Lock()
	s.rejected = &Rejection{Key: r.Key, Epoch: epoch, Version: r.Version, Error: err.Error()}
	s.mu.Unlock()
	s.noisy.Error("fleet: record refused; the last good state stays in force",
		attrOp, op, "key", r.Key, "version", r.Version, "error", err)
}

// heartbeat writes the instance's status; a head it has not applied wakes
// the loop.
func (s *Syncer) heartbeat(ctx context.Context, stopped bool) {
	in := s.Status()
	in.Stopped = stopped
	val, err := json.Marshal(in)
	if err != nil {
		s.storeError(opHeartbeat, err)
		return
	}
	ttl := s.cfg.ttl
	if stopped {
		ttl = 0
	}
	hctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	head, err := s.store.Heartbeat(hctx, s.cfg.id, val, ttl)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.storeError(opHeartbeat, err)
		}
		return
	}
	// A heartbeat that shows the applied head confirms the state is
	// current; any other head needs a read first.
	if head == in.Applied {
		s.contact()
	} else if !stopped {
		s.signal()
	}
}

func (s *Syncer) contact() {
	s.mu.Lock()
	s.lastContact = s.cfg.now()
	s.contacted = true
	s.storeErr = ""
	s.mu.Unlock()
}

func (s *Syncer) storeError(op string, err error) {
	s.m.errors.Add(context.Background(), 1, s.m.opts(op)...)
	s.mu.Lock()
	s.storeErr = op + ": " + err.Error()
	s.mu.Unlock()
	s.noisy.Warn(failedMsg(op), "error", err)
}

// Messages of failed store and cache calls: one each, so that each has a
// log budget of its own.
const (
	msgReadFailed      = "fleet: store read failed"
	msgHeartbeatFailed = "fleet: store heartbeat failed"
	msgSubscribeFailed = "fleet: store subscription failed"
	msgCacheFailed     = "fleet: cache file failed"
)

func failedMsg(op string) string {
	switch op {
	case opRead:
		return msgReadFailed
	case opHeartbeat:
		return msgHeartbeatFailed
	case opSubscribe:
		return msgSubscribeFailed
	default:
		return msgCacheFailed
	}
}

// staleness is the time since the last store contact.
func (s *Syncer) staleness() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.now().Sub(s.lastContact)
}

// checkStale logs the transitions into and out of staleness.
func (s *Syncer) checkStale() {
	now := s.cfg.now()
	s.mu.Lock()
	since := now.Sub(s.lastContact)
	stale := since > s.cfg.staleAfter
	changed := stale != s.staleLogged
	s.staleLogged = stale
	applied, serr := s.applied, s.storeErr
	s.mu.Unlock()
	switch {
	case changed && stale:
		s.log.Warn("fleet: store unreachable; serving the last good state", "since", since.Round(time.Millisecond),
			"applied_epoch", applied.Epoch, "applied_version", applied.Version, "error", serr)
	case changed:
		s.log.Info("fleet: store reachable again", "applied_epoch", applied.Epoch, "applied_version", applied.Version)
	}
}

// Status reports the instance's state: what its next heartbeat says.
func (s *Syncer) Status() Instance {
	now := s.cfg.now()
	s.mu.Lock()
	in := Instance{
		ID:         s.cfg.id,
		Host:       s.cfg.host,
		Build:      s.cfg.build,
		Started:    s.started,
		Sent:       now,
		Applied:    s.applied,
		Source:     s.source,
		Stale:      now.Sub(s.lastContact) > s.cfg.staleAfter,
		StoreError: s.storeErr,
	}
	if s.contacted {
		in.LastContact = s.lastContact
	}
	if s.rejected != nil {
		r := *s.rejected
		in.Rejected = &r
	}
	guards := slices.Clone(s.guards)
	s.mu.Unlock()
	for _, g := range guards {
		in.Guards = append(in.Guards, g.Status())
	}
	slices.SortFunc(in.Guards, func(a, b GuardStatus) int { return cmp.Compare(a.Gate, b.Gate) })
	in.Config = s.reg.Config()
	gs := s.reg.Gates()
	in.Gates = make([]GateState, 0, len(gs))
	for _, g := range gs {
		st := g.Status()
		in.Gates = append(in.Gates, GateState{Name: st.Name, Percent: st.Percent, Killed: st.Killed, Reason: st.Reason, KilledBy: st.KilledBy})
	}
	return in
}

package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/blastradius/blastradius/logbudget"
	"github.com/blastradius/blastradius/rollout"
)

// DefaultBatchInterval is how often a Guard sends its instance's counts and
// its lease holder judges the pooled counts.
const DefaultBatchInterval = time.Second

// DefaultGuardTimeout bounds each batch of a Guard: its writes to the
// store, its lease and its reads, as DefaultTimeout bounds a Syncer's
// store calls.
const DefaultGuardTimeout = 2 * time.Second

// Modes of a Guard: GuardStatus.Mode.
const (
	// ModeFleet: the guard judges the counts pooled in the store.
	ModeFleet = "fleet"
	// ModeLocal: the store is unreachable; the guard judges its own
	// instance's counts and kills the gate on this instance only.
	ModeLocal = "local"
)

// GuardOption configures a Guard in NewGuard.
type GuardOption interface {
	applyGuard(*guardConfig) error
}

type guardOption func(*guardConfig) error

func (f guardOption) applyGuard(c *guardConfig) error { return f(c) }

type guardConfig struct {
	id       string
	interval time.Duration
	timeout  time.Duration
	test     []rollout.GuardOption
	logger   *slog.Logger
	mp       metric.MeterProvider
	syncer   *Syncer
}

// WithGuardInstanceID sets the id under which the Guard sends its counts
// and holds the lease; use the Syncer's (Syncer.ID). The default is the
// host name and a random suffix.
func WithGuardInstanceID(id string) GuardOption {
	return guardOption(func(c *guardConfig) error {
		if id == "" || len(id) > 256 {
			return invalid("WithGuardInstanceID", fmt.Sprintf("%q", id), "must be 1 to 256 bytes")
		}
		c.id = id
		return nil
	})
}

// WithBatchInterval sets how often the Guard sends its counts and, while
// it holds the lease, judges the pooled counts. The default is
// DefaultBatchInterval.
func WithBatchInterval(d time.Duration) GuardOption {
	return guardOption(func(c *guardConfig) error {
		if err := positive("WithBatchInterval", d); err != nil {
			return err
		}
		c.interval = d
		return nil
	})
}

// WithGuardTimeout bounds each batch's store calls: past it, the batch
// fails and the guard judges its local counts until the store answers
// again. The default is DefaultGuardTimeout, whatever the batch interval:
// a batch writes the counts and the exposure data, takes the lease and,
// on the lease holder, reads every instance's counts, which a loaded store
// may not do within a short interval. The lease lasts two batch intervals
// and the timeout, so that it outlasts the slowest batch.
func WithGuardTimeout(d time.Duration) GuardOption {
	return guardOption(func(c *guardConfig) error {
		if err := positive("WithGuardTimeout", d); err != nil {
			return err
		}
		c.timeout = d
		return nil
	})
}

// WithTest sets the guard's test, with the options of rollout.WithGuard
// (confidence, minimum samples, checkpoint interval, window, absolute
// limits). The default is rollout's defaults.
func WithTest(opts ...rollout.GuardOption) GuardOption {
	return guardOption(func(c *guardConfig) error { c.test = append(c.test, opts...); return nil })
}

// WithSyncer reports the Guard's status in s's heartbeat (Instance.Guards,
// so List and Handler show it) while the Guard runs, and, unless
// WithGuardInstanceID says otherwise, sends the counts under s's id.
func WithSyncer(s *Syncer) GuardOption {
	return guardOption(func(c *guardConfig) error {
		if s == nil {
			return invalid("WithSyncer", "nil", "needs a Syncer")
		}
		c.syncer = s
		return nil
	})
}

// WithGuardMeterProvider sets the OpenTelemetry meter provider of the
// guard's instruments (see the package doc) and of its own log budget's
// suppression counter, nil meaning the global one.
func WithGuardMeterProvider(mp metric.MeterProvider) GuardOption {
	return guardOption(func(c *guardConfig) error { c.mp = mp; return nil })
}

// WithGuardLogger sets the logger, nil meaning slog.Default(). Its records go
// through the logger's log budget if its handler is a *logbudget.Handler,
// otherwise through one of the guard's own (see package logbudget).
func WithGuardLogger(l *slog.Logger) GuardOption {
	return guardOption(func(c *guardConfig) error { c.logger = l; return nil })
}

// Guard is rollout's guard for a fleet: every instance runs one for a gate
// (configured without rollout.WithGuard), beside its Syncer. Every batch
// interval it sends its instance's cumulative counts of the gate
// (Gate.Counts) to the store with a rising sequence, so a retry or a
// reconnect neither loses nor double-counts calls; the request path never
// touches the store. The instance that holds the gate's lease sums every
// instance's counts and runs rollout's test on them (rollout.GuardTest:
// the same checkpoints every CheckEvery calls of the new arm, window,
// absolute limits and error-rate spending), once per checkpoint for the
// whole fleet, and keeps the test's state in the store, so that another
// instance takes over where it stopped if it dies. A trip publishes a kill
// of the gate through the store, as an operator's Publisher.Kill does, with
// the numbers in the reason. While the store cannot be reached, the guard
// judges its own instance's counts (from the outage on) and kills the gate
// on this instance only, and says so (GuardStatus.Mode, one log line).
// Give the gate no rollout.WithGuard of its own. The zero value is not
// usable: use NewGuard.
type Guard struct {
	store GuardStore
	gate  *rollout.Gate
	pub   *Publisher
	test  *rollout.GuardTest
	cfg   guardConfig
	log   *slog.Logger
	// counts reads the instance's cumulative counts; tests replace it.
	counts func() rollout.Counts

	// countsID is the instance id and a random suffix of this Guard's
	// own: its counts start at zero, so they must not replace those of an
	// earlier process with the same instance id.
	countsID string
	seq      uint64
	holder   bool
	// exposed is when the exposure was written last, exposedSeq the
	// sequence of the gate's last change (rollout.Event.Seq) it held.
	exposed    time.Time
	exposedSeq uint64
	fleet      *verdictState // the pooled test's state while holding the lease
	local      *verdictState // the local test's state while the store is unreachable

	m       *guardMetrics
	running atomic.Bool

	mu sync.Mutex
	st GuardStatus
}

// GuardStatus is a snapshot of a Guard. The zero value reports nothing.
type GuardStatus struct {
	// Gate is the guarded gate's name.
	Gate string `json:"gate"`
	// Mode is ModeFleet or ModeLocal; StoreError is the last store error
	// while local.
	Mode       string `json:"mode"`
	StoreError string `json:"store_error,omitempty"`
	// Holder reports that this instance holds the lease and judges the
	// fleet; Instances is how many instances' counts it pooled.
	Holder    bool `json:"holder"`
	Instances int  `json:"instances,omitempty"`
	// Counts are the counts judged last: pooled, or the instance's own
	// while local; Window those of the test's current window. Looks is
	// the number of looks of the test, and Z and Critical the z statistic
	// and its limit at the last look. All zero on an instance that
	// neither holds the lease nor judges locally.
	Counts   rollout.Counts `json:"counts"`
	Window   rollout.Counts `json:"window"`
	Looks    int            `json:"looks"`
	Z        float64        `json:"z,omitempty"`
	Critical float64        `json:"critical,omitempty"`
	// Tripped is the reason of the last trip, until the gate resumes.
	Tripped string `json:"tripped,omitempty"`
}

// NewGuard returns a Guard of gate that pools its counts in store and
// publishes its kills as actor "fleet-guard@ID". It does nothing until Run.
// A nil option is skipped. Errors wrap ErrInvalidConfig and name the
// option and its value.
func NewGuard(store GuardStore, gate *rollout.Gate, opts ...GuardOption) (*Guard, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	if gate == nil {
		return nil, fmt.Errorf("%w: nil gate", ErrInvalidConfig)
	}
	if _, own := gate.Guard(); own {
		// Its own guard would judge this instance's share alone and kill on
		// its own: N such guards multiply the fleet's false kills by N.
		return nil, fmt.Errorf("%w: gate %q has its own guard (rollout.WithGuard): a gate judged by a fleet Guard takes none", ErrInvalidConfig, gate.Name())
	}
	c := guardConfig{interval: DefaultBatchInterval, timeout: DefaultGuardTimeout}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyGuard(&c); err != nil {
			return nil, err
		}
	}
	test, err := rollout.NewGuardTest(c.test...)
	if err != nil {
		return nil, fmt.Errorf("%w: WithTest: %w", ErrInvalidConfig, err)
	}
	if c.id == "" && c.syncer != nil {
		c.id = c.syncer.ID()
	}
	if c.id == "" {
		host, _ := os.Hostname()
		c.id = defaultID(host)
	}
	// Transitions only, but a flapping store could make them many: through
	// the logger's log budget, or one of the guard's own. The options are
	// valid, so For cannot fail.
	budget, _ := logbudget.For(c.logger, logbudget.WithKeyAttr("reason"), logbudget.WithMeterProvider(c.mp))
	pub, _ := NewPublisher(store, WithActor("fleet-guard@"+c.id))
	gd := &Guard{store: store, gate: gate, pub: pub, test: test, cfg: c, countsID: defaultID(c.id),
		log: slog.New(budget), counts: gate.Counts,
		st: GuardStatus{Gate: gate.Name(), Mode: ModeFleet}}
	gd.m = newGuardMetrics(c.mp, gd)
	return gd, nil
}

// Status reports the guard's state.
func (gd *Guard) Status() GuardStatus {
	gd.mu.Lock()
	defer gd.mu.Unlock()
	return gd.st
}

// Run sends counts and judges every batch interval until ctx is done, then
// returns ctx.Err(). It returns ErrRunning if the Guard is already running.
func (gd *Guard) Run(ctx context.Context) error {
	if !gd.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer gd.running.Store(false)
	if s := gd.cfg.syncer; s != nil {
		s.addGuard(gd)
		defer s.removeGuard(gd)
	}
	t := time.NewTicker(gd.cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			gd.step(ctx)
		}
	}
}

// step is one batch: send the counts, take or renew the lease, judge.
func (gd *Guard) step(ctx context.Context) {
	own := gd.counts()
	killed := gd.gate.Status().Killed
	cctx, cancel := context.WithTimeout(ctx, gd.cfg.timeout)
	defer cancel()
	err := gd.fleetStep(cctx, own, killed)
	if err == nil {
		if gd.local != nil {
			gd.log.Info("fleet: guard judges the fleet again", "gate", gd.gate.Name())
			gd.local = nil
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	gd.holder, gd.fleet = false, nil
	if gd.local == nil {
		gd.log.Warn(msgGuardLocal, "gate", gd.gate.Name(), "error", err)
		gd.local = newVerdictState(gd.test, own)
	}
	looks := gd.local.Looks
	reason := gd.local.observe(own, killed)
	gd.m.verdict(ModeLocal, gd.local.Looks > looks, reason != "")
	if reason != "" {
		_ = gd.gate.KillBy(rollout.KilledByGuard, "fleet guard, store unreachable, local verdict: "+reason)
	}
	gd.setStatus(gd.local.status(GuardStatus{Mode: ModeLocal, StoreError: err.Error(), Counts: own}))
}

// msgGuardLocal is logged when a Guard falls back to its instance's counts.
const msgGuardLocal = "fleet: store unreachable, guard falls back to the local counts"

// stateID is the id under which the lease holder keeps the test's state.
const stateID = "~guard"

// fleetStep sends the instance's counts and, if it holds the lease, judges
// the pooled counts and acts on the verdict. An error means the store could
// not be reached.
func (gd *Guard) fleetStep(ctx context.Context, own rollout.Counts, killed bool) error {
	name := gd.gate.Name()
	gd.seq++
	b, _ := json.Marshal(countsValue{own, time.Now()})
	if err := gd.store.PutCounts(ctx, name, gd.countsID, gd.seq, b); err != nil {
		return err
	}
	if err := gd.putExposure(ctx, name); err != nil {
		return err
	}
	// Renewed every batch, the lease outlasts a batch that takes the
	// whole timeout and the wait for the next.
	held, err := gd.store.Lease(ctx, "guard/"+name, gd.cfg.id, 2*gd.cfg.interval+gd.cfg.timeout)
	if err != nil {
		return err
	}
	if !held {
		gd.holder, gd.fleet = false, nil
		gd.setStatus(GuardStatus{Mode: ModeFleet})
		return nil
	}
	all, err := gd.store.Counts(ctx, name)
	if err != nil {
		return err
	}
	var state []byte
	entries := make(map[string]countsValue, len(all))
	for id, v := range all {
		if id == stateID {
			state = v
			continue
		}
		var c countsValue
		if json.Unmarshal(v, &c) == nil {
			entries[id] = c
		}
	}
	// Taking over: continue the test where it stopped. A holder whose
	// state the store lost (it stores its state as soon as it holds the
	// lease, and nothing deletes it) starts again as a new holder does:
	// its own state counts calls the store no longer has.
	if gd.fleet == nil || state == nil {
		gd.fleet = &verdictState{test: gd.test}
		if state == nil || json.Unmarshal(state, gd.fleet) != nil {
			// No state: the rollout's first holder, or a store that lost
			// it. The test starts at the pooled counts of now, and that
			// start is stored at once, not at the first checkpoint:
			// otherwise a store error or a handover before it would make
			// the next holder start again from its own, later counts and
			// push every checkpoint back. Starting from zero counts
			// instead would be wrong for a takeover mid-rollout: the
			// instances' counts are cumulative since their start, so
			// after a lost state they hold calls from before the last
			// resume (those of the path that was killed) and from before
			// the guard ran, which the test must not judge again.
			gd.fleet = &verdictState{test: gd.test}
			gd.fleet.reset(gd.fleet.pool(entries))
			if err := gd.saveState(ctx, name); err != nil {
				return err
			}
		}
	}
	pooled := gd.fleet.pool(entries)
	instances := 0 // the processes whose counts are pooled, not folded
	for id := range entries {
		if _, folded := gd.fleet.FoldedIDs[id]; !folded {
			instances++
		}
	}
	before := *gd.fleet
	reason := gd.fleet.observe(pooled, killed)
	looked := gd.fleet.Looks > before.Looks
	if reason != "" {
		reason = fmt.Sprintf("fleet guard: %s; pooled from %d instances", reason, instances)
		err := appendHistory(ctx, gd.store, name, HistoryEntry{At: time.Now(), Kind: EntryVerdict,
			Source: rollout.KilledByGuard, By: gd.pub.actor, Reason: reason, Counts: &pooled, Instances: instances})
		if err == nil {
			if _, err = gd.pub.Kill(ctx, name, reason); errors.Is(err, ErrNoHistory) {
				err = nil // published: the kill took effect
			}
		}
		if err != nil {
			*gd.fleet = before // not published: judge again next batch
			return err
		}
	}
	gd.m.verdict(ModeFleet, looked, reason != "")
	if gd.fleet.changed(before) {
		if err := gd.saveState(ctx, name); err != nil {
			return err
		}
	}
	gd.holder = true
	gd.setStatus(gd.fleet.status(GuardStatus{Mode: ModeFleet, Holder: true, Instances: instances, Counts: pooled}))
	if gd.seq%foldEvery == 0 {
		return gd.fold(ctx, name, entries)
	}
	return nil
}

// putExposure writes the instance's exposure, for ReadExposure and
// ReadHistory, beside its counts under a name that is no gate's: at once
// after a change of the gate, so that the fleet history has it a batch
// later, and otherwise at most every exposureEvery, as it is the larger
// write and short batches under load would make it many.
func (gd *Guard) putExposure(ctx context.Context, name string) error {
	now := time.Now()
	h := gd.gate.History()
	last := h[len(h)-1].Seq
	if now.Sub(gd.exposed) < exposureEvery && last == gd.exposedSeq {
		return nil
	}
	b, _ := json.Marshal(exposureOf(gd.gate, h, gd.cfg.id, now))
	if err := gd.store.PutCounts(ctx, exposurePrefix+name, gd.countsID, gd.seq, b); err != nil {
		return err
	}
	gd.exposed, gd.exposedSeq = now, last
	return nil
}

// saveState stores the pooled test's state under the next sequence.
func (gd *Guard) saveState(ctx context.Context, name string) error {
	gd.fleet.Seq++
	b, _ := json.Marshal(gd.fleet)
	return gd.store.PutCounts(ctx, name, stateID, gd.fleet.Seq, b)
}

// setStatus sets the status; a change of mode, of holder or of trip is
// heartbeat at once by the Syncer (WithSyncer).
func (gd *Guard) setStatus(st GuardStatus) {
	st.Gate = gd.gate.Name()
	gd.mu.Lock()
	prev := gd.st
	gd.st = st
	gd.mu.Unlock()
	if s := gd.cfg.syncer; s != nil && (prev.Mode != st.Mode || prev.Holder != st.Holder || prev.Tripped != st.Tripped) {
		s.heartbeatSoon()
	}
}

// status completes st with the test's state.
func (j *verdictState) status(st GuardStatus) GuardStatus {
	st.Window = st.Counts.Sub(j.LookBase)
	st.Looks, st.Z, st.Critical, st.Tripped = j.Looks, j.Z, j.Critical, j.Tripped
	return st
}

// verdictState is the guard's checkpoint rule, as rollout's guard applies it, on
// cumulative counts observed from time to time: every CheckEvery calls of
// the new arm it moves the window and marks a look due; the look is taken
// once both arms have the minimum samples. Its exported fields are the
// state the lease holder keeps in the store.
type verdictState struct {
	test *rollout.GuardTest

	Seq      uint64           `json:"seq"`
	Base     rollout.Counts   `json:"base"`  // counts at the start or the last resume
	Snaps    []rollout.Counts `json:"snaps"` // counts at the last Window/CheckEvery checkpoints
	LookBase rollout.Counts   `json:"look_base"`
	Due      int64            `json:"due"` // new-arm calls since Base of the next checkpoint
	Waiting  bool             `json:"waiting"`
	Looks    int              `json:"looks"`
	LastN    int64            `json:"last_n"`
	Z        float64          `json:"z,omitempty"` // the last look's
	Critical float64          `json:"critical,omitempty"`
	Tripped  string           `json:"tripped,omitempty"`
	Paused   bool             `json:"paused,omitempty"` // the gate is killed
	// Folded are the counts of processes that stopped writing theirs,
	// folded into the state by fold; FoldedIDs their counts ids and when
	// they were folded, so that an entry folded but not yet deleted (or
	// written again late) is never counted twice.
	Folded    rollout.Counts       `json:"folded,omitzero"`
	FoldedIDs map[string]time.Time `json:"folded_ids,omitempty"`
}

// pool sums the counts of entries, except those folded, and the folded
// counts.
func (j *verdictState) pool(entries map[string]countsValue) rollout.Counts {
	sum := j.Folded
	for id, c := range entries {
		if _, folded := j.FoldedIDs[id]; !folded {
			sum = sum.Add(c.Counts)
		}
	}
	return sum
}

func newVerdictState(t *rollout.GuardTest, cur rollout.Counts) *verdictState {
	j := &verdictState{test: t}
	j.reset(cur)
	return j
}

func (j *verdictState) reset(cur rollout.Counts) {
	*j = verdictState{test: j.test, Seq: j.Seq, Base: cur, LookBase: cur, Due: j.test.CheckEvery(),
		Folded: j.Folded, FoldedIDs: j.FoldedIDs}
}

// windowBase is the counts at the start of the window.
func (j *verdictState) windowBase() rollout.Counts {
	if int64(len(j.Snaps)) == j.test.Window()/j.test.CheckEvery() {
		return j.Snaps[0]
	}
	return j.Base
}

// changed reports whether the state moved since b, so must be stored.
func (j *verdictState) changed(b verdictState) bool {
	return j.Due != b.Due || j.Looks != b.Looks || j.Tripped != b.Tripped || j.Paused != b.Paused || j.Base != b.Base
}

// observe takes the cumulative counts cur and whether the gate is killed,
// and returns the reason of a trip, or "". A killed gate pauses the test;
// its resume starts a new one, as Resume does for rollout's guard.
func (j *verdictState) observe(cur rollout.Counts, killed bool) string {
	if killed {
		j.Paused = true
		return ""
	}
	if j.Paused {
		j.reset(cur)
	}
	if j.Tripped != "" {
		return "" // the kill is on its way
	}
	n := cur.New.Calls - j.Base.New.Calls
	if n >= j.Due {
		j.Due = n + j.test.CheckEvery()
		j.LookBase = j.windowBase()
		if int64(len(j.Snaps)) == j.test.Window()/j.test.CheckEvery() {
			j.Snaps = j.Snaps[1:]
		}
		j.Snaps = append(j.Snaps, cur)
		j.Waiting = true
	}
	if r := j.test.Limits(cur.Sub(j.LookBase)); r != "" {
		j.Tripped = r
		return r
	}
	if w := cur.Sub(j.LookBase); j.Waiting && j.test.Ready(w) {
		j.Waiting = false
		j.Looks++
		l := j.test.Look(j.Looks, j.LastN, n, w)
		j.LastN, j.Z, j.Critical = n, l.Z, l.Critical
		if l.Trip {
			j.Tripped = l.Reason
			return l.Reason
		}
	}
	return ""
}

package rollout

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/blastradius/blastradius/internal/telemetry"
	"github.com/blastradius/blastradius/logbudget"
)

// The state word that Enabled loads: the threshold in buckets (percent ×
// 10⁴) in the low 32 bits, then a bit that says a schedule promotion is
// pending, then the kill bit. Every write happens under Gate.mu; Enabled
// only loads it.
const (
	unitsMask  = 1<<32 - 1
	pendingBit = 1 << 32
	killedBit  = 1 << 33
)

// sampleEvery is how often, on average, an Enabled call on a gate with a
// pending promotion reads the clock: one call in sampleEvery.
const sampleEvery = 256

// noDue is the nextDue of a gate that has no pending promotion.
const noDue = math.MaxInt64

// Attribute names. feature_flag.key comes from the OpenTelemetry
// feature-flag semantic conventions.
const (
	attrKey    = "feature_flag.key"
	attrReason = "reason"
)

// Values of Status.KilledBy and of the reason attribute of the
// blastradius.rollout.kills counter: what killed the gate.
const (
	// KilledByCall is a kill by a call of Gate.Kill: the admin handler's,
	// a fleet's or the service's own.
	KilledByCall = "call"
	// KilledByConfig is a kill applied by Registry.LoadConfig.
	KilledByConfig = "config"
	// KilledByGuard is a kill by the gate's guard (WithGuard), or by a
	// fleet guard judging this instance alone while its store is
	// unreachable.
	KilledByGuard = "guard"
	// KilledByFleet is a change applied from a fleet store (package
	// fleet): an operator's publish, or a fleet guard's verdict with its
	// numbers in the reason.
	KilledByFleet = "fleet"
)

var killSources = [...]string{KilledByCall, KilledByConfig, KilledByGuard, KilledByFleet}

// checkSource returns an error wrapping ErrInvalidConfig unless source is
// one a caller may give to KillBy, ResumeBy or SetPercentBy: KilledByCall,
// KilledByGuard or KilledByFleet. KilledByConfig is Registry.LoadConfig's
// own, since a config resumes only the kills it made.
func checkSource(fn, source string) error {
	switch source {
	case KilledByCall, KilledByGuard, KilledByFleet:
		return nil
	}
	return invalid("%s(%q): source must be %q, %q or %q", fn, source, KilledByCall, KilledByGuard, KilledByFleet)
}

type scheduledStep struct {
	units uint32
	hold  time.Duration
}

// Gate is a named, sticky percentage gate with a kill switch and an
// optional ramp schedule. Its methods are safe for concurrent use; Enabled
// takes no lock and allocates nothing. The zero value is not usable: use
// New.
type Gate struct {
	state      atomic.Uint64 // see unitsMask, pendingBit, killedBit
	seed       uint64        // FNV-1a state after "v1" and the salt
	nextDue    atomic.Int64  // UnixNano when a promotion may be due; noDue if none
	evaluating atomic.Bool   // one schedule evaluation at a time
	staleOnce  atomic.Bool

	name    string
	salt    string
	owner   string
	expires time.Time
	now     func() time.Time
	log     *slog.Logger // state changes
	noisy   *slog.Logger // repeated messages, through budget
	budget  *logbudget.Handler
	// Budget keys of the messages a Path logs per call.
	panicKey, mismatchKey *logbudget.Key

	kills    metric.Int64Counter
	killOpts map[string][]metric.AddOption
	obsOpts  []metric.ObserveOption

	mu        sync.Mutex
	units     uint32 // configured percent × 10⁴
	killed    bool
	reason    string
	killedBy  string
	killedAt  time.Time
	schedule  []scheduledStep
	step      int
	stepStart time.Time
	scheduled bool   // the schedule still advances (not stopped by SetPercent)
	held      string // reason of the last veto of the current step
	gen       uint64 // bumped by every change, so evaluate can detect races
	vetoes    []promotionVeto
	hist      []Event // the last HistorySize events, a ring from histNext once full
	histNext  int
	histSeq   uint64

	failures failureRing // the new arm's last failures, for Exposure

	regs atomic.Pointer[[]*Registry] // registries to notify of changes (notify.go)

	// Path calls (run.go, path.go, guard.go).
	stats *runStats
	guard *guard // set by WithGuard's onBuild; nil without a guard
}

// nameRule is the syntax of a gate name. It keeps a name one URL path
// segment as is, so that the admin handler's router delivers it unchanged
// (never "." or ".."), and safe in logs and metric attributes.
const nameRule = "1 to 128 characters of [A-Za-z0-9._-], starting with a letter or digit"

// validName reports whether name follows nameRule.
func validName(name string) bool {
	if len(name) < 1 || len(name) > 128 || !isAlnum(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// checkName returns an error wrapping ErrInvalidConfig unless name is a
// valid gate name; fn is the function that was given it.
func checkName(fn, name string) error {
	if !validName(name) {
		return invalid("%s(%q): gate name must be %s", fn, name, nameRule)
	}
	return nil
}

// CheckName returns the error New would return for name, nil if it is a
// valid gate name (see New). A tool that names gates elsewhere (a fleet
// publisher, a config generator) checks it here first. Its error wraps
// ErrInvalidConfig.
func CheckName(name string) error { return checkName("CheckName", name) }

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// New returns a gate named name. A name is 1 to 128 ASCII letters, digits,
// '.', '_' and '-', and starts with a letter or digit; so it is one URL
// path segment as is, which the admin handler can route (see Handler).
// Without WithPercent or WithSchedule the gate starts at 0%: it enables no
// key. Errors wrap ErrInvalidConfig.
func New(name string, opts ...Option) (*Gate, error) {
	if err := checkName("New", name); err != nil {
		return nil, err
	}
	c := gateConfig{salt: name}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyGate(&c); err != nil {
			return nil, err
		}
	}
	if c.percentSet && c.schedule != nil {
		return nil, invalid("WithPercent and WithSchedule: give one, not both (the first step is the initial percent)")
	}
	budget := logBudget(c.logger, c.mp, c.now) // a nil clock: the budget's monotonic one
	if c.now == nil {
		c.now = time.Now
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	g := &Gate{
		seed:    seedFor(c.salt),
		name:    name,
		salt:    c.salt,
		owner:   c.owner,
		expires: c.expires,
		now:     c.now,
		log:     c.logger,
		noisy:   slog.New(budget),
		budget:  budget,
		units:   c.units,
		vetoes:  c.vetoes,
	}
	g.panicKey = budget.Key(msgPanic, slog.String(attrKey, name))
	g.mismatchKey = budget.Key(msgMismatch, slog.String(attrKey, name))
	g.nextDue.Store(noDue)
	if len(c.schedule) > 0 {
		for _, s := range c.schedule {
			u, _ := percentUnits(s.Percent) // validated by WithSchedule
			g.schedule = append(g.schedule, scheduledStep{units: u, hold: s.Hold})
		}
		g.units = g.schedule[0].units
		g.stepStart = c.now()
		g.scheduled = len(g.schedule) > 1
		g.armLocked()
	}
	g.storeLocked()

	m := telemetry.Meter(c.mp, "rollout")
	key := attribute.String(attrKey, name)
	g.kills = telemetry.Counter(m, "blastradius.rollout.kills",
		"Kills of a rollout gate: transitions from enabled to killed.", "{kill}")
	g.killOpts = make(map[string][]metric.AddOption, len(killSources))
	for _, s := range killSources {
		g.killOpts[s] = telemetry.AddOpts(key, attribute.String(attrReason, s))
	}
	g.obsOpts = telemetry.ObserveOpts(key)
	g.stats = newRunStats(m, name)
	g.recordLocked(c.now(), EventCreated, "", "") // g is not shared yet
	// One instrument is shared by all gates of a meter, so each gate
	// registers its own callback. telemetry.FloatGauge would pass it at
	// creation, which the SDK ignores for every gate but the first on a
	// meter (TestMetrics has two).
	pct, err := m.Float64ObservableGauge("blastradius.rollout.percent",
		metric.WithDescription("Share of keys a rollout gate enables now: its percent, or 0 while killed."),
		metric.WithUnit("%"))
	if err != nil {
		otel.Handle(err)
	} else if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(pct, g.effectivePercent(), g.obsOpts...)
		return nil
	}, pct); err != nil {
		otel.Handle(err)
	}

	for _, f := range c.onBuild {
		f(g)
	}
	return g, nil
}

// Name returns the gate's name.
func (g *Gate) Name() string { return g.name }

// Enabled reports whether key takes the new code path. The answer depends
// only on the salt, the key and the percent: it is deterministic across
// processes, sticky while the percent holds, and monotonic (a key enabled at
// p is enabled at every p' > p). A killed gate enables no key. Enabled takes
// no lock and does not allocate: it loads one atomic word and hashes the key.
// While a schedule promotion is pending, about one call in 256 also reads
// the clock to evaluate the schedule.
func (g *Gate) Enabled(key string) bool {
	s := g.state.Load()
	if s > unitsMask {
		if s&killedBit != 0 {
			return false
		}
		g.sample()
	}
	t := uint32(s)
	if t == 0 {
		return false
	}
	if t >= Buckets {
		return true
	}
	return bucketOf(g.seed, key) < t
}

// sample evaluates the schedule on about one call in sampleEvery. The
// runtime's per-thread random source keeps it free of shared writes.
func (g *Gate) sample() {
	if rand.Uint32()%sampleEvery == 0 {
		g.evaluate(g.now())
	}
}

// SetPercent sets the percent, from 0 to 100 in steps of 0.0001. It stops
// the schedule, if any: an operator's setting is not overridden by the ramp.
// On a killed gate it changes the percent that Resume restores. An invalid
// percent wraps ErrInvalidConfig and ErrOutOfRange and changes nothing.
func (g *Gate) SetPercent(p float64) error { return g.SetPercentBy(KilledByCall, p) }

// SetPercentBy is SetPercent on behalf of source, which History and the
// logs record: KilledByCall, KilledByGuard or KilledByFleet (package fleet
// applies a fleet's percent with KilledByFleet). Another source wraps
// ErrInvalidConfig and changes nothing.
func (g *Gate) SetPercentBy(source string, p float64) error {
	if err := checkSource("SetPercentBy", source); err != nil {
		return err
	}
	u, err := checkPercent(p)
	if err != nil {
		return err
	}
	g.setUnits(u, source)
	g.notify()
	return nil
}

// setUnits is SetPercent with a validated percent; source says who set it.
// The caller notifies the registries (notify).
func (g *Gate) setUnits(u uint32, source string) {
	now := g.now()
	g.mu.Lock()
	old := g.units
	stopped := g.scheduled
	g.units = u
	g.scheduled = false
	g.held = ""
	g.gen++
	g.armLocked()
	g.storeLocked()
	g.recordLocked(now, EventPercent, source, "")
	g.mu.Unlock()
	attrs := []any{attrKey, g.name, "percent", unitsPercent(u), "previous", unitsPercent(old), "source", source}
	if stopped {
		attrs = append(attrs, "schedule_stopped", true)
	}
	g.log.Info("rollout: percent set", attrs...)
}

// Kill disables the gate for every key. It is one atomic store: every
// Enabled call that starts after Kill returns returns false, on every
// goroutine. The schedule stops advancing until Resume. Killing a killed
// gate changes nothing and keeps the first reason.
func (g *Gate) Kill(reason string) { _ = g.KillBy(KilledByCall, reason) }

// KillBy is Kill on behalf of source, which Status.KilledBy, History and
// the reason attribute of blastradius.rollout.kills record: KilledByCall,
// KilledByGuard or KilledByFleet (package fleet applies a fleet's kill with
// KilledByFleet). Another source wraps ErrInvalidConfig and changes nothing.
func (g *Gate) KillBy(source, reason string) error {
	if err := checkSource("KillBy", source); err != nil {
		return err
	}
	if g.kill(source, reason) {
		g.notify()
	}
	return nil
}

// kill is Kill with the source recorded in Status.KilledBy and in the
// reason attribute of blastradius.rollout.kills. It reports whether the
// gate was alive. The caller notifies the registries (notify).
func (g *Gate) kill(source, reason string) bool {
	now := g.now()
	g.mu.Lock()
	if g.killed {
		g.mu.Unlock()
		return false
	}
	g.killed = true
	g.reason, g.killedBy, g.killedAt = reason, source, now
	g.gen++
	g.armLocked()
	g.storeLocked()
	g.recordLocked(now, EventKill, source, reason)
	g.mu.Unlock()
	g.kills.Add(context.Background(), 1, g.killOpts[source]...)
	g.log.Warn("rollout: gate killed", attrKey, g.name, attrReason, reason, "source", source)
	return true
}

// Resume lifts a kill: the gate enables keys at its percent again. A
// schedule resumes at the step where it stopped, whose hold starts again at
// the time of Resume. Resuming a live gate changes nothing.
func (g *Gate) Resume() { _ = g.ResumeBy(KilledByCall) }

// ResumeBy is Resume on behalf of source, which History records:
// KilledByCall, KilledByGuard or KilledByFleet (package fleet applies a
// fleet's resume with KilledByFleet). It lifts a kill whoever made it.
// Another source wraps ErrInvalidConfig and changes nothing.
func (g *Gate) ResumeBy(source string) error {
	if err := checkSource("ResumeBy", source); err != nil {
		return err
	}
	if g.resume(source, false) {
		g.notify()
	}
	return nil
}

// resume lifts a kill, made by source alone if own, on behalf of source.
// It reports whether it resumed the gate. The caller notifies the
// registries (notify).
func (g *Gate) resume(source string, own bool) bool {
	now := g.now()
	g.mu.Lock()
	if !g.killed || own && g.killedBy != source {
		g.mu.Unlock()
		return false
	}
	g.killed = false
	g.reason, g.killedBy, g.killedAt = "", "", time.Time{}
	g.stepStart = now
	g.held = ""
	g.gen++
	if g.guard != nil {
		g.guard.reset() // a new test: the data behind the kill must not trip it again
	}
	g.armLocked()
	g.storeLocked()
	g.recordLocked(now, EventResume, source, "")
	p := unitsPercent(g.units)
	g.mu.Unlock()
	g.log.Info("rollout: gate resumed", attrKey, g.name, "percent", p)
	return true
}

// storeLocked publishes the state word. g.mu must be held.
func (g *Gate) storeLocked() {
	s := uint64(g.units)
	if g.killed {
		s |= killedBit
	} else if g.scheduled {
		s |= pendingBit
	}
	g.state.Store(s)
}

// armLocked sets nextDue from the schedule. g.mu must be held.
func (g *Gate) armLocked() {
	if g.killed || !g.scheduled || g.step >= len(g.schedule)-1 {
		g.nextDue.Store(noDue)
		return
	}
	due := g.stepStart.Add(g.schedule[g.step].hold)
	if due.After(maxDue) {
		g.nextDue.Store(noDue - 1) // beyond UnixNano's range: still checked by dueLocked
		return
	}
	g.nextDue.Store(due.UnixNano())
}

// maxDue is the last time whose UnixNano does not overflow.
var maxDue = time.Unix(0, noDue-1)

// evaluate is the one place where the schedule moves. If the current
// step's hold has passed at now and every promotion veto allows it, it
// promotes the gate by exactly one step, whose hold starts at now; so every
// step is held for at least its Hold however late evaluate runs. Enabled
// calls it on a sample of calls, and Status on every call. Only one
// evaluation runs at a time; a concurrent one returns at once. The vetoes are
// called without g.mu held, so they may call any method of the gate.
func (g *Gate) evaluate(now time.Time) {
	if now.UnixNano() < g.nextDue.Load() {
		return
	}
	if !g.evaluating.CompareAndSwap(false, true) {
		return
	}
	defer g.evaluating.Store(false)

	g.mu.Lock()
	if !g.dueLocked(now) {
		g.mu.Unlock()
		return
	}
	gen, next, vetoes, held := g.gen, g.step+1, g.vetoes, g.held
	g.mu.Unlock()

	for _, v := range vetoes {
		if ok, why := v.allowPromotion(next, now); !ok {
			g.mu.Lock()
			if g.gen == gen {
				g.held = why
			}
			g.mu.Unlock()
			if why != held {
				g.noisy.Info("rollout: promotion held", attrKey, g.name, "step", next, "held", why)
			}
			return
		}
	}

	g.mu.Lock()
	if g.gen != gen || !g.dueLocked(now) {
		g.mu.Unlock()
		return
	}
	from := g.units
	g.step = next
	g.units = g.schedule[next].units
	g.stepStart = now
	g.held = ""
	g.scheduled = next < len(g.schedule)-1
	g.gen++
	g.armLocked()
	g.storeLocked()
	g.recordLocked(now, EventStep, SourceSchedule, "")
	g.mu.Unlock()
	g.log.Info("rollout: schedule promoted", attrKey, g.name, "step", next,
		"percent", unitsPercent(g.schedule[next].units), "previous", unitsPercent(from))
	g.notify()
}

// dueLocked reports whether the current step's hold has passed at now and
// the gate may be promoted. g.mu must be held.
func (g *Gate) dueLocked(now time.Time) bool {
	return !g.killed && g.scheduled && g.step < len(g.schedule)-1 &&
		now.Sub(g.stepStart) >= g.schedule[g.step].hold
}

func (g *Gate) effectivePercent() float64 {
	s := g.state.Load()
	if s&killedBit != 0 {
		return 0
	}
	return unitsPercent(uint32(s))
}

// Status is a snapshot of a gate, as Gate.Status and the admin handler
// report it. The zero value describes no gate.
type Status struct {
	// Name is the gate's name.
	Name string `json:"name"`
	// Salt is the gate's salt: Bucket(Salt, key) tells whether a key is in.
	Salt string `json:"salt"`
	// Percent is the configured percent. While Killed, no key is enabled,
	// and Percent is what Resume restores.
	Percent float64 `json:"percent"`
	// Killed reports a kill; Reason is the reason given to it and KilledBy
	// its source: KilledByCall, KilledByConfig, KilledByGuard or
	// KilledByFleet.
	Killed   bool      `json:"killed"`
	Reason   string    `json:"reason,omitempty"`
	KilledBy string    `json:"killed_by,omitempty"`
	KilledAt time.Time `json:"killed_at,omitzero"`
	// Step is the index of the current schedule step, or -1 without a
	// schedule; Steps is the number of steps.
	Step  int `json:"step"`
	Steps int `json:"steps,omitempty"`
	// Scheduled reports that the schedule will still promote the gate: it
	// has steps left and was not stopped by SetPercent.
	Scheduled bool `json:"scheduled"`
	// NextStepAt is when the current step's hold ends, while Scheduled and
	// not Killed. Promotion happens at the first evaluation after it.
	NextStepAt time.Time `json:"next_step_at,omitzero"`
	// Held is the reason of the last veto of a promotion to the next step.
	Held string `json:"held,omitempty"`
	// Owner and Expires are those given to New; Stale reports that Expires
	// has passed: the gate should have been removed from the code.
	Owner   string    `json:"owner,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	Stale   bool      `json:"stale"`
}

// Status evaluates the schedule with the gate's clock, then reports the
// gate's state. Calling it periodically bounds the promotion lag of a
// gate that sees few Enabled calls.
func (g *Gate) Status() Status {
	now := g.now()
	g.evaluate(now)
	g.mu.Lock()
	st := Status{
		Name:      g.name,
		Salt:      g.salt,
		Percent:   unitsPercent(g.units),
		Killed:    g.killed,
		Reason:    g.reason,
		KilledBy:  g.killedBy,
		KilledAt:  g.killedAt,
		Step:      -1,
		Scheduled: g.scheduled,
		Held:      g.held,
		Owner:     g.owner,
		Expires:   g.expires,
	}
	if len(g.schedule) > 0 {
		st.Step, st.Steps = g.step, len(g.schedule)
		if g.scheduled && !g.killed {
			st.NextStepAt = g.stepStart.Add(g.schedule[g.step].hold)
		}
	}
	g.mu.Unlock()
	if !g.expires.IsZero() && !now.Before(g.expires) {
		st.Stale = true
		if g.staleOnce.CompareAndSwap(false, true) {
			g.noisy.Warn("rollout: gate is past its expiry; remove it from the code",
				attrKey, g.name, "owner", g.owner, "expires", g.expires)
		}
	}
	return st
}

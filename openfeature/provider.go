package openfeature

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/rollout"
)

// Name is the provider's name in its metadata, and so the value of the
// feature_flag.provider.name attribute.
const Name = "blastradius"

// Variants of an evaluation: the gate enables the key's new code path, or
// not.
const (
	VariantOn  = "on"
	VariantOff = "off"
)

// Keys of an evaluation's flag metadata, present whenever the gate exists.
const (
	// MetadataPercent is the gate's configured percent, a float64 from 0
	// to 100. While the gate is killed it is what Resume restores.
	MetadataPercent = "percent"
	// MetadataKilled is a bool: the gate is killed.
	MetadataKilled = "killed"
	// MetadataKillReason is the reason given to the kill: a string, present
	// only while the gate is killed.
	MetadataKillReason = "killReason"
	// MetadataVersion is the "version" of the config document the registry
	// applied last (rollout.ConfigInfo.Version): a string, absent before the
	// first. The SDK's telemetry reports it as feature_flag.version.
	MetadataVersion = "version"
)

// ErrInvalidConfig is wrapped by the errors of New.
var ErrInvalidConfig = errors.New("openfeature: invalid config")

// FleetPollInterval is how often a provider given WithFleet reads the
// Syncer's status to see whether it is stale.
const FleetPollInterval = time.Second

// Provider is an OpenFeature provider that evaluates the gates of a
// rollout.Registry as boolean flags. A flag key is a gate name; the
// evaluation context's targeting key is the key given to the gate. It
// implements the SDK's FeatureProvider, StateHandler and EventHandler. Its
// methods are safe for concurrent use. The zero value is not usable: use
// New.
type Provider struct {
	reg    *rollout.Registry
	syncer *fleet.Syncer
	events chan of.Event

	pmu     sync.Mutex          // guards pending and config
	pending map[string]struct{} // gates changed since the last event
	config  bool                // the registry applied a config since the last event
	wake    chan struct{}       // one token: something is pending

	mu   sync.Mutex // guards stop
	stop func()     // ends what Init started; nil when not initialized
}

// Option configures a Provider.
type Option func(*Provider)

// WithFleet makes the provider report the state of the fleet Syncer s: a
// PROVIDER_STALE event when s reports itself stale (its store has been out
// of reach for longer than fleet.WithStaleAfter) and PROVIDER_READY when it
// recovers. The provider reads s.Status every FleetPollInterval; it does
// not run s. Nil means no fleet.
func WithFleet(s *fleet.Syncer) Option {
	return func(p *Provider) { p.syncer = s }
}

// New returns a provider of the gates of reg. Register it with the SDK
// (openfeature.SetProviderAndWait), which calls Init and Shutdown. A nil
// option is skipped; a nil reg wraps ErrInvalidConfig.
func New(reg *rollout.Registry, opts ...Option) (*Provider, error) {
	if reg == nil {
		return nil, fmt.Errorf("%w: New: nil registry", ErrInvalidConfig)
	}
	p := &Provider{
		reg:     reg,
		events:  make(chan of.Event),
		pending: make(map[string]struct{}),
		wake:    make(chan struct{}, 1),
	}
	for _, o := range opts {
		if o != nil {
			o(p)
		}
	}
	return p, nil
}

// Metadata returns the provider's name, Name.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: Name} }

// Hooks returns no hook; see TraceHook for the telemetry of evaluations.
func (p *Provider) Hooks() []of.Hook { return nil }

// BooleanEvaluation evaluates the gate named flag for the targeting key of
// flatCtx, from one snapshot of the gate (rollout.Gate.Status), so the
// value, the reason and the metadata always agree. The value is what the
// gate's Enabled returns for the key:
//
//   - killed: false, variant "off", reason DISABLED (never defaultValue:
//     a kill turns the new code path off);
//   - at 0% or 100%: false or true, reason STATIC;
//   - in between: whether the gate enables the key, reason SPLIT; without a
//     targeting key, defaultValue with reason ERROR and TARGETING_KEY_MISSING;
//   - no gate of that name (unknown, or retired): defaultValue with reason
//     ERROR and FLAG_NOT_FOUND.
func (p *Provider) BooleanEvaluation(_ context.Context, flag string, defaultValue bool, flatCtx of.FlattenedContext) of.BoolResolutionDetail {
	g, ok := p.reg.Gate(flag)
	if !ok {
		return of.BoolResolutionDetail{Value: defaultValue, ProviderResolutionDetail: notFound(flag)}
	}
	st := g.Status()
	d := of.ProviderResolutionDetail{FlagMetadata: p.metadata(st)}
	units := uint32(math.Round(st.Percent * 1e4)) // Percent is units / 10⁴
	var on bool
	switch {
	case st.Killed:
		d.Reason = of.DisabledReason
	case units == 0:
		d.Reason = of.StaticReason
	case units >= rollout.Buckets:
		on, d.Reason = true, of.StaticReason
	default:
		key, _ := flatCtx[of.TargetingKey].(string)
		if key == "" {
			d.Reason = of.ErrorReason
			d.ResolutionError = of.NewTargetingKeyMissingResolutionError(fmt.Sprintf(
				"openfeature: rollout gate %q is at %v%%: it needs a targeting key", flag, st.Percent))
			return of.BoolResolutionDetail{Value: defaultValue, ProviderResolutionDetail: d}
		}
		on, d.Reason = rollout.Bucket(st.Salt, key) < units, of.SplitReason
	}
	d.Variant = VariantOff
	if on {
		d.Variant = VariantOn
	}
	return of.BoolResolutionDetail{Value: on, ProviderResolutionDetail: d}
}

// metadata is the flag metadata of an evaluation of the gate st describes.
func (p *Provider) metadata(st rollout.Status) of.FlagMetadata {
	m := of.FlagMetadata{MetadataPercent: st.Percent, MetadataKilled: st.Killed}
	if st.Killed {
		m[MetadataKillReason] = st.Reason
	}
	if v := p.reg.Config().Version; v != "" {
		m[MetadataVersion] = v
	}
	return m
}

func notFound(flag string) of.ProviderResolutionDetail {
	return of.ProviderResolutionDetail{
		Reason: of.ErrorReason,
		ResolutionError: of.NewFlagNotFoundResolutionError(fmt.Sprintf(
			"openfeature: no rollout gate named %q is registered (unknown or retired)", flag)),
	}
}

// notBoolean is the resolution of a non-boolean evaluation of flag.
func (p *Provider) notBoolean(flag string) of.ProviderResolutionDetail {
	if _, ok := p.reg.Gate(flag); !ok {
		return notFound(flag)
	}
	return of.ProviderResolutionDetail{
		Reason: of.ErrorReason,
		ResolutionError: of.NewTypeMismatchResolutionError(fmt.Sprintf(
			"openfeature: rollout gate %q is a boolean flag", flag)),
	}
}

// StringEvaluation returns defaultValue with reason ERROR and TYPE_MISMATCH
// (FLAG_NOT_FOUND if there is no such gate): gates are boolean.
func (p *Provider) StringEvaluation(_ context.Context, flag string, defaultValue string, _ of.FlattenedContext) of.StringResolutionDetail {
	return of.StringResolutionDetail{Value: defaultValue, ProviderResolutionDetail: p.notBoolean(flag)}
}

// FloatEvaluation returns defaultValue with reason ERROR and TYPE_MISMATCH
// (FLAG_NOT_FOUND if there is no such gate): gates are boolean.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, defaultValue float64, _ of.FlattenedContext) of.FloatResolutionDetail {
	return of.FloatResolutionDetail{Value: defaultValue, ProviderResolutionDetail: p.notBoolean(flag)}
}

// IntEvaluation returns defaultValue with reason ERROR and TYPE_MISMATCH
// (FLAG_NOT_FOUND if there is no such gate): gates are boolean.
func (p *Provider) IntEvaluation(_ context.Context, flag string, defaultValue int64, _ of.FlattenedContext) of.IntResolutionDetail {
	return of.IntResolutionDetail{Value: defaultValue, ProviderResolutionDetail: p.notBoolean(flag)}
}

// ObjectEvaluation returns defaultValue with reason ERROR and TYPE_MISMATCH
// (FLAG_NOT_FOUND if there is no such gate): gates are boolean.
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, defaultValue any, _ of.FlattenedContext) of.InterfaceResolutionDetail {
	return of.InterfaceResolutionDetail{Value: defaultValue, ProviderResolutionDetail: p.notBoolean(flag)}
}

// EventChannel returns the channel of the provider's events, which the SDK
// reads: PROVIDER_CONFIGURATION_CHANGED with the names of the gates that
// changed, and with WithFleet PROVIDER_STALE and PROVIDER_READY. Changes
// that happen while an event waits to be read are coalesced into the next
// one, so a change never blocks on the SDK and no change goes unreported.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

// Init starts watching the registry's gates (and the Syncer, WithFleet)
// for the events; it never fails. The SDK calls it when the provider is
// registered. Calling it again before Shutdown does nothing.
func (p *Provider) Init(of.EvaluationContext) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	unsubscribe := p.reg.OnChange(p.changed)
	var wg sync.WaitGroup
	wg.Go(func() { p.run(ctx) })
	p.stop = func() {
		unsubscribe()
		cancel()
		wg.Wait()
	}
	return nil
}

// Shutdown stops what Init started and returns when it has stopped. The
// SDK calls it when the provider is replaced or the API shut down.
func (p *Provider) Shutdown() {
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// changed is the registry's change callback: it records name (or, for "",
// a config applied) for the next event and wakes run, never blocking.
func (p *Provider) changed(name string) {
	p.pmu.Lock()
	if name == "" {
		p.config = true
	} else {
		p.pending[name] = struct{}{}
	}
	p.pmu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// takePending returns the names recorded since the last call, sorted, and
// whether a config was applied since.
func (p *Provider) takePending() (names []string, config bool) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	names, config = slices.Sorted(maps.Keys(p.pending)), p.config
	clear(p.pending)
	p.config = false
	return names, config
}

// run sends the provider's events until ctx is done.
func (p *Provider) run(ctx context.Context) {
	var poll <-chan time.Time
	if p.syncer != nil {
		t := time.NewTicker(FleetPollInterval)
		defer t.Stop()
		poll = t.C
	}
	stale := false
	for {
		var e of.Event
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
			names, config := p.takePending()
			if len(names) == 0 && !config {
				continue
			}
			e = of.Event{ProviderName: Name, EventType: of.ProviderConfigChange,
				ProviderEventDetails: of.ProviderEventDetails{Message: "rollout gates changed", FlagChanges: names}}
			if config {
				e.Message = "rollout config applied: " + p.reg.Config().Version
			}
		case <-poll:
			in := p.syncer.Status()
			if in.Stale == stale {
				continue
			}
			stale = in.Stale
			e = of.Event{ProviderName: Name, EventType: of.ProviderReady,
				ProviderEventDetails: of.ProviderEventDetails{Message: "fleet store reachable again"}}
			if stale {
				e.EventType = of.ProviderStale
				e.Message = "fleet store unreachable; serving the last good state"
				if in.StoreError != "" {
					e.Message += ": " + in.StoreError
				}
			}
		}
		select {
		case p.events <- e:
		case <-ctx.Done():
			return
		}
	}
}

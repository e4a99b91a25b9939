package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"slices"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

// DefaultPollInterval is how often Publisher.Wait reads the heartbeats.
const DefaultPollInterval = 20 * time.Millisecond

// PublisherOption configures a Publisher in NewPublisher.
type PublisherOption interface {
	applyPublisher(*Publisher) error
}

type publisherOption func(*Publisher) error

func (f publisherOption) applyPublisher(p *Publisher) error { return f(p) }

// WithActor sets who publishes, recorded in every record ("by") and logged
// by every instance that applies it. The default is user@host.
func WithActor(actor string) PublisherOption {
	return publisherOption(func(p *Publisher) error {
		if len(actor) > 256 {
			return invalid("WithActor", fmt.Sprintf("%q", actor), "must be at most 256 bytes")
		}
		p.actor = actor
		return nil
	})
}

// WithPollInterval sets how often Wait reads the heartbeats. The default
// is DefaultPollInterval.
func WithPollInterval(d time.Duration) PublisherOption {
	return publisherOption(func(p *Publisher) error {
		if err := positive("WithPollInterval", d); err != nil {
			return err
		}
		p.poll = d
		return nil
	})
}

// Publisher publishes operations to a fleet through its store and waits
// for the instances to apply them. It is what an operator's tool uses.
type Publisher struct {
	store Store
	actor string
	poll  time.Duration
}

// NewPublisher returns a Publisher to store. A nil option is skipped.
// Errors wrap ErrInvalidConfig and name the option and its value.
func NewPublisher(store Store, opts ...PublisherOption) (*Publisher, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	p := &Publisher{store: store, poll: DefaultPollInterval}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyPublisher(p); err != nil {
			return nil, err
		}
	}
	if p.actor == "" {
		p.actor = defaultActor()
	}
	return p, nil
}

func defaultActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + cmp.Or(host, "unknown")
}

// Published is a publish: its operation and the head it produced.
type Published struct {
	Op
	Head
}

// Kill publishes a kill of gate. Every instance that has the gate kills it,
// whether or not it accepts the current config document.
func (p *Publisher) Kill(ctx context.Context, gate, reason string) (Published, error) {
	if len(reason) > maxReason {
		return Published{}, fmt.Errorf("fleet: kill reason longer than %d bytes", maxReason)
	}
	return p.gateOp(ctx, Op{Op: OpKill, Gate: gate, Reason: reason})
}

// Resume publishes a resume of gate: every instance that has it lifts its
// kill, whoever killed it.
func (p *Publisher) Resume(ctx context.Context, gate string) (Published, error) {
	return p.gateOp(ctx, Op{Op: OpResume, Gate: gate})
}

// SetPercent publishes gate's percent, from 0 to 100 in steps of 0.0001. It
// stops the gate's schedule on every instance, as rollout.Gate.SetPercent
// does.
func (p *Publisher) SetPercent(ctx context.Context, gate string, percent float64) (Published, error) {
	return p.gateOp(ctx, Op{Op: OpPercent, Gate: gate, Percent: &percent})
}

// PublishConfig publishes a rollout config document (the JSON that
// rollout.Registry.LoadConfig reads). A malformed document is refused here
// with the *rollout.ConfigError; a document that names a gate some
// instances do not have is published, and those instances refuse it and
// report so (see List).
func (p *Publisher) PublishConfig(ctx context.Context, doc []byte) (Published, error) {
	if _, err := configInfo(doc); err != nil {
		return Published{}, fmt.Errorf("fleet: not published: %w", err)
	}
	var compact json.RawMessage
	if err := json.Unmarshal(doc, &compact); err != nil {
		return Published{}, fmt.Errorf("fleet: not published: %w", err)
	}
	return p.publish(ctx, Op{Op: OpConfig, Config: compact})
}

func (p *Publisher) gateOp(ctx context.Context, op Op) (Published, error) {
	// The name and percent are checked as every instance will check them.
	err := rollout.CheckName(op.Gate)
	if err == nil && op.Percent != nil {
		err = rollout.CheckPercent(*op.Percent)
	}
	if err != nil {
		return Published{}, fmt.Errorf("fleet: not published: %w", err)
	}
	return p.publish(ctx, op)
}

// publish writes op to the store and, if the store keeps a history
// (HistoryStore), appends it to the history of every gate it changes. An
// error wrapping ErrNoHistory comes with a valid Published: the publish
// took effect, its history entry was not written.
func (p *Publisher) publish(ctx context.Context, op Op) (Published, error) {
	op.By = p.actor
	val, err := json.Marshal(op)
	if err != nil {
		return Published{}, fmt.Errorf("fleet: encode: %w", err)
	}
	if len(val) > MaxRecordBytes {
		return Published{}, fmt.Errorf("fleet: not published: record of %d bytes, more than %d", len(val), MaxRecordBytes)
	}
	h, err := p.store.Publish(ctx, op.key(), val)
	if err != nil {
		return Published{}, fmt.Errorf("fleet: publish: %w", err)
	}
	pub := Published{Op: op, Head: h}
	for _, e := range historyEntries(op, h.Version, time.Now()) {
		if err := appendHistory(ctx, p.store, e.gate, e.HistoryEntry); err != nil {
			return pub, fmt.Errorf("fleet: published version %d: %w", h.Version, err)
		}
	}
	return pub, nil
}

type gateEntry struct {
	gate string
	HistoryEntry
}

// historyEntries are the history entries of a publish of op: one for the
// gate of a kill, resume or percent, one per entry of a config document.
func historyEntries(op Op, version uint64, at time.Time) []gateEntry {
	e := HistoryEntry{At: at, Source: rollout.KilledByFleet, By: op.By, Version: version}
	switch op.Op {
	case OpConfig:
		var doc struct {
			Version string `json:"version"`
			Gates   []struct {
				Name    string   `json:"name"`
				Percent *float64 `json:"percent"`
				Killed  bool     `json:"killed"`
				Reason  string   `json:"reason"`
			} `json:"gates"`
		}
		if json.Unmarshal(op.Config, &doc) != nil {
			return nil
		}
		out := make([]gateEntry, 0, len(doc.Gates))
		for _, g := range doc.Gates {
			c := e
			c.Kind, c.Percent, c.Killed = EntryConfig, g.Percent, g.Killed
			if g.Killed {
				c.Reason = cmp.Or(g.Reason, "killed by config "+doc.Version)
			}
			out = append(out, gateEntry{g.Name, c})
		}
		return out
	case OpKill:
		e.Kind, e.Reason = rollout.EventKill, op.Reason
	case OpResume:
		e.Kind = rollout.EventResume
	case OpPercent:
		e.Kind, e.Percent = rollout.EventPercent, op.Percent
	}
	return []gateEntry{{op.Gate, e}}
}

// Acks says which live instances applied a publish.
type Acks struct {
	// Applied are the instances that applied it (their head reached it).
	Applied []Member
	// Refused are those that read it and refused it: a config document
	// that names a gate they do not have.
	Refused []Member
	// Lagging are those that had not applied it when Wait returned.
	Lagging []Member
	// NoGate are, among Applied, the instances that do not have the gate
	// of a kill, resume or percent, so it changed nothing there.
	NoGate []Member
	// Took is how long Wait waited.
	Took time.Duration
}

// Done reports whether every live instance applied or refused the publish.
func (a Acks) Done() bool { return len(a.Lagging) == 0 }

// Wait reads the heartbeats until every live instance has applied pub (or
// refused it, for a config document), or ctx is done, and reports which
// did. Instances heartbeat right after each apply, so Wait sees them within
// the store's round trip. It returns an error only if the store cannot be
// read; when ctx ends first, the instances still missing are Lagging.
func (p *Publisher) Wait(ctx context.Context, pub Published) (Acks, error) {
	start := time.Now()
	t := time.NewTicker(p.poll)
	defer t.Stop()
	var acks Acks
	for {
		v, err := List(ctx, p.store)
		if err != nil {
			if ctx.Err() != nil && acks.Took > 0 {
				return acks, nil
			}
			return acks, err
		}
		acks = classify(v, pub)
		acks.Took = time.Since(start)
		if acks.Done() {
			return acks, nil
		}
		select {
		case <-ctx.Done():
			return acks, nil
		case <-t.C:
		}
	}
}

// classify sorts the live members of v by how they stand with pub.
func classify(v View, pub Published) Acks {
	var a Acks
	for _, m := range v.Instances {
		if !m.Live {
			continue
		}
		switch {
		case m.Applied.Epoch != pub.Epoch || m.Applied.Version < pub.Version:
			a.Lagging = append(a.Lagging, m)
		case pub.Op.Op == OpConfig && m.Rejected != nil && m.Rejected.Key == keyConfig &&
			m.Rejected.Epoch == pub.Epoch && m.Rejected.Version == pub.Version:
			a.Refused = append(a.Refused, m)
		default:
			a.Applied = append(a.Applied, m)
			if pub.Gate != "" {
				if _, ok := m.Gate(pub.Gate); !ok {
					a.NoGate = append(a.NoGate, m)
				}
			}
		}
	}
	for _, l := range []*[]Member{&a.Applied, &a.Refused, &a.Lagging, &a.NoGate} {
		slices.SortFunc(*l, func(x, y Member) int { return cmp.Compare(x.ID, y.ID) })
	}
	return a
}

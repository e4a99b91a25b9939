package fleet

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/blastradius/blastradius/rollout"
)

// View is the fleet as a store sees it: its head, its config document and
// every instance that heartbeats to it.
type View struct {
	// Head is the store's current head.
	Head Head `json:"head"`
	// ConfigVersion is the store version of the current config document,
	// 0 if none was published in this epoch; Config describes it (its
	// version and the hash an instance that applies it reports), and
	// ConfigError says why it could not be read, if so.
	ConfigVersion uint64             `json:"config_version,omitempty"`
	Config        rollout.ConfigInfo `json:"config,omitzero"`
	ConfigError   string             `json:"config_error,omitempty"`
	// Instances are sorted: those with problems first, then by id.
	Instances []Member `json:"instances"`
	// Unreadable counts heartbeats that could not be decoded.
	Unreadable int `json:"unreadable,omitempty"`
}

// Member is one instance in a View.
type Member struct {
	Instance
	// Live: its last heartbeat has not expired. An instance that is not
	// live has vanished, or Stopped.
	Live bool `json:"live"`
	// Behind: it has not applied the store's head (another epoch or an
	// older version).
	Behind bool `json:"behind"`
	// ConfigDiffers: it runs a config whose hash is not the store's
	// document's.
	ConfigDiffers bool `json:"config_differs"`
	// Refusing: it refused the store's current version of a record (a
	// config document that names a gate it does not know, for example).
	Refusing bool `json:"refusing"`
	// Problems says, in words, what is wrong; empty for a healthy
	// instance.
	Problems []string `json:"problems,omitempty"`
}

// Current reports whether the member is live and runs the store's state.
func (m Member) Current() bool { return len(m.Problems) == 0 && m.Live }

// List reads the store's head and heartbeats and judges every instance:
// live or vanished (its heartbeat expired), behind the head, running a
// config whose hash differs from the store's document, refusing the
// current version of a record, or stale by its own report (no store
// contact).
func List(ctx context.Context, store Store) (View, error) {
	snap, err := store.Read(ctx)
	if err != nil {
		return View{}, fmt.Errorf("fleet: read store: %w", err)
	}
	beats, err := store.Heartbeats(ctx)
	if err != nil {
		return View{}, fmt.Errorf("fleet: read heartbeats: %w", err)
	}
	v := View{Head: snap.Head, Instances: make([]Member, 0, len(beats))}
	current := make(map[string]uint64, len(snap.Records))
	for _, r := range snap.Records {
		current[r.Key] = r.Version
		if r.Key == keyConfig {
			v.ConfigVersion = r.Version
			op, err := parseRecord(r.Key, r.Value)
			if err == nil {
				v.Config, err = configInfo(op.Config)
			}
			if err != nil {
				v.ConfigError = err.Error()
			}
		}
	}
	for _, hb := range beats {
		in, err := parseInstance(hb.Value)
		if err != nil || in.ID != hb.ID {
			v.Unreadable++
			continue
		}
		v.Instances = append(v.Instances, judge(in, hb.TTL, v, current))
	}
	slices.SortFunc(v.Instances, func(a, b Member) int {
		if c := cmp.Compare(len(b.Problems), len(a.Problems)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return v, nil
}

func judge(in Instance, ttl time.Duration, v View, current map[string]uint64) Member {
	m := Member{Instance: in, Live: ttl > 0 && !in.Stopped}
	switch {
	case in.Stopped:
		m.Problems = append(m.Problems, "stopped")
		return m
	case !m.Live:
		m.Problems = append(m.Problems, fmt.Sprintf("vanished: last heartbeat expired %s ago", (-ttl).Round(time.Second)))
		return m
	}
	if in.Applied != v.Head {
		m.Behind = true
		if in.Applied.Epoch != v.Head.Epoch {
			m.Problems = append(m.Problems, fmt.Sprintf("behind: applied epoch %q, store epoch %q", in.Applied.Epoch, v.Head.Epoch))
		} else {
			m.Problems = append(m.Problems, fmt.Sprintf("behind: applied version %d of %d", in.Applied.Version, v.Head.Version))
		}
	}
	if v.Config.Hash != "" && in.Config.Hash != v.Config.Hash {
		m.ConfigDiffers = true
		runs := "no config"
		if in.Config.Hash != "" {
			runs = fmt.Sprintf("%q %s", in.Config.Version, short(in.Config.Hash))
		}
		m.Problems = append(m.Problems, fmt.Sprintf("config differs: runs %s, store has %q %s",
			runs, v.Config.Version, short(v.Config.Hash)))
	}
	if r := in.Rejected; r != nil && r.Epoch == v.Head.Epoch && current[r.Key] == r.Version {
		m.Refusing = true
		m.Problems = append(m.Problems, fmt.Sprintf("refuses %s version %d: %s", r.Key, r.Version, r.Error))
	}
	if in.Stale {
		m.Problems = append(m.Problems, "stale: reports no store contact since "+in.LastContact.Format(time.RFC3339))
	}
	for _, g := range in.Guards {
		if g.Mode == ModeLocal {
			m.Problems = append(m.Problems, fmt.Sprintf("guard of %s judges this instance alone: %s", g.Gate, g.StoreError))
		}
	}
	return m
}

// short abbreviates a "sha256:…" hash for messages.
func short(h string) string {
	if len(h) > 19 {
		return h[:19]
	}
	return h
}

// configInfo returns what a registry that knows every gate doc names would
// report after applying doc: its version and canonical hash. It is how the
// fleet view knows the hash instances should report. Errors are the
// *rollout.ConfigError of a malformed document.
func configInfo(doc []byte) (rollout.ConfigInfo, error) {
	discard := slog.New(slog.DiscardHandler)
	mp := noop.NewMeterProvider()
	reg, err := rollout.NewRegistry(rollout.WithLogger(discard), rollout.WithMeterProvider(mp))
	if err != nil {
		return rollout.ConfigInfo{}, err
	}
	var names struct {
		Gates []struct {
			Name string `json:"name"`
		} `json:"gates"`
	}
	_ = json.Unmarshal(doc, &names) // LoadConfig reports what is wrong
	for _, n := range names.Gates {
		if g, err := rollout.New(n.Name, rollout.WithLogger(discard), rollout.WithMeterProvider(mp)); err == nil {
			_ = reg.Register(g) // a duplicate is LoadConfig's to report
		}
	}
	info, err := reg.LoadConfig(bytes.NewReader(doc))
	if err != nil {
		return rollout.ConfigInfo{}, err
	}
	info.Applied = time.Time{}
	return info, nil
}

package fleet

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

// maxHeartbeatBytes bounds a heartbeat read from a store: it is untrusted
// input.
const maxHeartbeatBytes = 4 << 20

// Sources of an instance's state: Instance.Source.
const (
	// SourceStore: the state was read from the store.
	SourceStore = "store"
	// SourceCache: the store could not be read at start-up and the state
	// was booted from the cache file (WithCacheFile).
	SourceCache = "cache"
)

// Instance is what an instance reports about itself: its Syncer's Status,
// and the content of its heartbeat.
type Instance struct {
	// ID, Host and Build identify the instance (WithInstanceID, WithHost,
	// WithBuild).
	ID    string `json:"id"`
	Host  string `json:"host,omitempty"`
	Build string `json:"build,omitempty"`
	// Started is when the Syncer was created; Sent when this report was
	// made.
	Started time.Time `json:"started"`
	Sent    time.Time `json:"sent"`
	// Applied is the store head whose state the instance has applied.
	Applied Head `json:"applied"`
	// Source is SourceStore, SourceCache, or empty before the first sync.
	Source string `json:"source,omitempty"`
	// Config is the rollout config the instance runs: the document's
	// version and its canonical hash.
	Config rollout.ConfigInfo `json:"config"`
	// Rejected is the last record the instance refused, if any.
	Rejected *Rejection `json:"rejected,omitempty"`
	// Stale reports that the instance has not reached the store for longer
	// than its bound (WithStaleAfter): it serves its last good state.
	// LastContact is when it last confirmed its state current: a
	// successful read, or a heartbeat that showed the head it has applied.
	Stale       bool      `json:"stale"`
	LastContact time.Time `json:"last_contact,omitzero"`
	// StoreError is the last error of a store call, if the last call failed.
	StoreError string `json:"store_error,omitempty"`
	// Stopped is set in the last heartbeat of an instance whose Syncer
	// stopped.
	Stopped bool `json:"stopped,omitempty"`
	// Gates are the instance's gates and their state.
	Gates []GateState `json:"gates"`
	// Guards are the status of the fleet Guards that run beside the
	// Syncer (WithSyncer), by gate: whether the instance holds the lease
	// and judges the fleet, or judges locally while the store is
	// unreachable, its looks, last z and the counts judged.
	Guards []GuardStatus `json:"guards,omitempty"`
}

// Rejection is a record that an instance refused, and why.
type Rejection struct {
	// Key, Epoch and Version identify the record.
	Key     string `json:"key"`
	Epoch   string `json:"epoch"`
	Version uint64 `json:"version"`
	// Error is the reason, such as `rollout: config rejected: gates[1]
	// "search-v3": rollout: unknown gate`.
	Error string `json:"error"`
}

// GateState is a gate's state as an instance reports it.
type GateState struct {
	Name     string  `json:"name"`
	Percent  float64 `json:"percent"`
	Killed   bool    `json:"killed,omitempty"`
	Reason   string  `json:"reason,omitempty"`
	KilledBy string  `json:"killed_by,omitempty"`
}

// Gate returns the state of the gate named name and whether the instance has
// it.
func (in Instance) Gate(name string) (GateState, bool) {
	for _, g := range in.Gates {
		if g.Name == name {
			return g, true
		}
	}
	return GateState{}, false
}

// parseInstance decodes a heartbeat's value.
func parseInstance(data []byte) (Instance, error) {
	if len(data) > maxHeartbeatBytes {
		return Instance{}, fmt.Errorf("%w: heartbeat of %d bytes, more than %d", ErrMalformed, len(data), maxHeartbeatBytes)
	}
	var in Instance
	if err := json.Unmarshal(data, &in); err != nil {
		return Instance{}, fmt.Errorf("%w: heartbeat: %v", ErrMalformed, err)
	}
	if in.ID == "" {
		return Instance{}, fmt.Errorf("%w: heartbeat without an id", ErrMalformed)
	}
	return in, nil
}

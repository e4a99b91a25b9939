package fleet

import (
	"context"
	"time"
)

// Store is what a fleet shares: a versioned set of records that operators
// publish and instances read, a "something changed" notification, and the
// instances' heartbeats. A driver implements it over an engine the service
// already runs (Redis, NATS, etcd); MemoryStore implements it in one process.
//
// The contract, which the sync logic relies on:
//
//   - A store has an epoch: an opaque id of its current lifetime. It is
//     created by the first Publish that finds none, and a store that loses its
//     data (a flush, a new empty server) gets a new one, so that ordering by
//     version starts again. Read and Heartbeat report an empty epoch when there
//     is none; they never create one.
//   - Publish is atomic: it takes the next version of the epoch (1, 2, 3 ...;
//     no two publishes get the same one), writes the record under its key with
//     that version and the store's time, and only then notifies subscribers.
//   - Read returns a consistent snapshot: the head and every record, each at
//     the version it was last written with.
//   - A notification carries nothing: subscribers read the state again.
//     Notifications may be lost (pub/sub is fire and forget), so the sync
//     logic also reads on every (re)subscription and on a periodic reconcile.
type Store interface {
	// Publish writes value under key as the next version, creating the
	// epoch if the store has none, then notifies subscribers. It returns
	// the head the write produced.
	Publish(ctx context.Context, key string, value []byte) (Head, error)
	// Read returns the current state.
	Read(ctx context.Context) (Snapshot, error)
	// Subscribe calls notify(Subscribed) every time a subscription is
	// established or re-established, and notify(Changed) on every
	// notification, until ctx is done; it then returns ctx.Err(). It
	// reconnects on its own; an error return means it cannot go on, and the
	// caller may call it again. notify must not block.
	Subscribe(ctx context.Context, notify func(Event)) error
	// Heartbeat writes value as the heartbeat of instance id, live for
	// ttl (0 means already expired), and returns the current head, so a
	// heartbeat doubles as a cheap check for missed changes.
	Heartbeat(ctx context.Context, id string, value []byte, ttl time.Duration) (Head, error)
	// Heartbeats lists the heartbeats, including expired ones that the
	// store still keeps (drivers keep them for a retention period, so that
	// vanished instances can be shown).
	Heartbeats(ctx context.Context) ([]Heartbeat, error)
}

// Event is what a Store's Subscribe reports.
type Event int

const (
	// Changed: a publish happened (or may have).
	Changed Event = iota
	// Subscribed: a subscription was (re-)established; anything published
	// while there was none was not notified.
	Subscribed
)

// String returns "changed" or "subscribed".
func (e Event) String() string {
	if e == Subscribed {
		return "subscribed"
	}
	return "changed"
}

// Head is a position in a store's history: its epoch and its version.
type Head struct {
	// Epoch identifies the store's lifetime; empty when the store has none
	// (nothing published since it was created or lost its data).
	Epoch string `json:"epoch"`
	// Version is the number of publishes in the epoch.
	Version uint64 `json:"version"`
}

// Snapshot is a store's state at one head.
type Snapshot struct {
	Head
	// Records are the latest record of every key, in no particular order.
	Records []Record
}

// Record is the latest value written under a key.
type Record struct {
	Key     string
	Version uint64
	Value   []byte
	// Published is when the store wrote it, by the store's clock; zero if
	// the store does not know.
	Published time.Time
}

// Heartbeat is the latest heartbeat of one instance.
type Heartbeat struct {
	ID    string
	Value []byte
	// TTL is how long the heartbeat stays live from the moment it was read,
	// by the store's clock; zero or negative once it has expired.
	TTL time.Duration
}

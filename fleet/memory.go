package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"time"
)

// heartbeatRetention is how long MemoryStore keeps an expired heartbeat, so
// that the fleet view can list the instance as vanished.
const heartbeatRetention = 10 * time.Minute

// MemoryStore is a Store in one process: for a single service process, tests
// and demonstrations. It reads time.Now, so inside a testing/synctest bubble
// it runs on the bubble's clock. The zero value is not usable; use
// NewMemoryStore.
type MemoryStore struct {
	mu      sync.Mutex
	epoch   string
	version uint64
	records map[string]Record
	beats   map[string]memBeat
	subs    map[*func(Event)]struct{}
	counts  map[string]map[string]memCount // GuardStore: name → id → counts
	leases  map[string]memLease
	history map[string][][]byte // HistoryStore: name → entries, oldest first
}

type memBeat struct {
	value   []byte
	expires time.Time
}

// NewMemoryStore returns an empty store: no epoch, no records.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		records: make(map[string]Record),
		beats:   make(map[string]memBeat),
		subs:    make(map[*func(Event)]struct{}),
	}
}

// Publish implements Store.
func (m *MemoryStore) Publish(ctx context.Context, key string, value []byte) (Head, error) {
	if err := ctx.Err(); err != nil {
		return Head{}, err
	}
	m.mu.Lock()
	if m.epoch == "" {
		m.epoch = newEpoch()
	}
	m.version++
	m.records[key] = Record{Key: key, Version: m.version, Value: slices.Clone(value), Published: time.Now()}
	h := Head{Epoch: m.epoch, Version: m.version}
	subs := m.subscribersLocked()
	m.mu.Unlock()
	for _, f := range subs {
		(*f)(Changed)
	}
	return h, nil
}

// Read implements Store.
func (m *MemoryStore) Read(ctx context.Context) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Snapshot{Head: Head{Epoch: m.epoch, Version: m.version}, Records: make([]Record, 0, len(m.records))}
	for _, r := range m.records {
		r.Value = slices.Clone(r.Value)
		s.Records = append(s.Records, r)
	}
	return s, nil
}

// Subscribe implements Store: it reports Subscribed once, then Changed on
// every Publish, until ctx is done.
func (m *MemoryStore) Subscribe(ctx context.Context, notify func(Event)) error {
	f := &notify
	m.mu.Lock()
	m.subs[f] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.subs, f)
		m.mu.Unlock()
	}()
	notify(Subscribed)
	<-ctx.Done()
	return ctx.Err()
}

// Heartbeat implements Store. It also forgets heartbeats that expired more
// than ten minutes ago.
func (m *MemoryStore) Heartbeat(ctx context.Context, id string, value []byte, ttl time.Duration) (Head, error) {
	if err := ctx.Err(); err != nil {
		return Head{}, err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.beats[id] = memBeat{value: slices.Clone(value), expires: now.Add(ttl)}
	for k, b := range m.beats {
		if now.Sub(b.expires) > heartbeatRetention {
			delete(m.beats, k)
		}
	}
	return Head{Epoch: m.epoch, Version: m.version}, nil
}

// Heartbeats implements Store.
func (m *MemoryStore) Heartbeats(ctx context.Context) ([]Heartbeat, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	hs := make([]Heartbeat, 0, len(m.beats))
	for id, b := range m.beats {
		hs = append(hs, Heartbeat{ID: id, Value: slices.Clone(b.value), TTL: b.expires.Sub(now)})
	}
	return hs, nil
}

// Flush drops every record, the version and the epoch, as a data loss
// would; heartbeats are kept. The next Publish starts a new epoch at
// version 1.
func (m *MemoryStore) Flush() {
	m.mu.Lock()
	m.epoch, m.version = "", 0
	clear(m.records)
	m.mu.Unlock()
}

func (m *MemoryStore) subscribersLocked() []*func(Event) {
	subs := make([]*func(Event), 0, len(m.subs))
	for f := range m.subs {
		subs = append(subs, f)
	}
	return subs
}

// newEpoch returns a random epoch id.
func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

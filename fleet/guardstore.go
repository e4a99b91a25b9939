package fleet

import (
	"context"
	"slices"
	"time"
)

// GuardStore is a Store that also holds what a fleet Guard needs: every
// instance's counts of a gate, and a lease that lets one instance at a time
// act on the pooled counts. MemoryStore and the Redis driver implement it.
type GuardStore interface {
	Store
	// PutCounts writes value as instance id's counts under name, with
	// sequence seq, unless the store already holds a sequence at least as
	// high for them: a retried or delayed write changes nothing. Instances
	// write cumulative counts, so a lost write is made good by the next and
	// nothing is counted twice.
	PutCounts(ctx context.Context, name, id string, seq uint64, value []byte) error
	// Counts returns the latest value of every instance under name, by
	// instance id.
	Counts(ctx context.Context, name string) (map[string][]byte, error)
	// Lease gives the lease called name to holder for ttl if it is free,
	// expired or already holder's (then it is renewed), and reports whether
	// holder holds it: a compare-and-set, so that at most one holder has it
	// at any time by the store's clock.
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
}

type memCount struct {
	seq   uint64
	value []byte
}

type memLease struct {
	holder  string
	expires time.Time
}

// PutCounts implements GuardStore.
func (m *MemoryStore) PutCounts(ctx context.Context, name, id string, seq uint64, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = make(map[string]map[string]memCount)
	}
	byID := m.counts[name]
	if byID == nil {
		byID = make(map[string]memCount)
		m.counts[name] = byID
	}
	if c, ok := byID[id]; ok && c.seq >= seq {
		return nil
	}
	byID[id] = memCount{seq, slices.Clone(value)}
	return nil
}

// Counts implements GuardStore.
func (m *MemoryStore) Counts(ctx context.Context, name string) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]byte, len(m.counts[name]))
	for id, c := range m.counts[name] {
		out[id] = slices.Clone(c.value)
	}
	return out, nil
}

// Lease implements GuardStore.
func (m *MemoryStore) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leases == nil {
		m.leases = make(map[string]memLease)
	}
	l, ok := m.leases[name]
	if ok && l.holder != holder && now.Before(l.expires) {
		return false, nil
	}
	m.leases[name] = memLease{holder, now.Add(ttl)}
	return true, nil
}

// AppendHistory implements HistoryStore.
func (m *MemoryStore) AppendHistory(ctx context.Context, name string, entry []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.history == nil {
		m.history = make(map[string][][]byte)
	}
	h := append(m.history[name], slices.Clone(entry))
	if n := len(h); n > MaxHistory {
		h = slices.Delete(h, 0, n-MaxHistory)
	}
	m.history[name] = h
	return nil
}

// History implements HistoryStore.
func (m *MemoryStore) History(ctx context.Context, name string) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][]byte, len(m.history[name]))
	for i, e := range m.history[name] {
		out[i] = slices.Clone(e)
	}
	return out, nil
}

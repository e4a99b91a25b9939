package fleet

import (
	"context"
	"encoding/json"
	"maps"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

// Folding the counts of vanished processes. Every process writes its counts
// under an id of its own (its instance id and a random suffix), so each
// restart adds an entry; the lease holder folds those that stopped writing
// into the test's state and deletes them, if the store can delete.
const (
	// FoldAfter is how long a process's counts must have gone unwritten
	// before the lease holder folds them into the test's state.
	FoldAfter = 10 * time.Minute
	// ExposureRetention is how long the exposure data of a process that
	// stopped writing it is kept (for ReadExposure and ReadHistory).
	ExposureRetention = 24 * time.Hour
	// foldEvery is how many batches apart the holder looks for counts to
	// fold.
	foldEvery = 60
	// foldMemory is how long a folded id is remembered once its entry is
	// gone, so that a late write under it is not counted again.
	foldMemory = 24 * time.Hour
	// maxFolded bounds the remembered folded ids.
	maxFolded = 1024
)

// CountsDeleter is a GuardStore that can delete an instance's counts.
// With it, a Guard's lease holder folds the counts of processes that have
// not written theirs for FoldAfter into the test's state, which it keeps
// in the store, then deletes them, so the counts do not grow with every
// restart while their sum stays the same; and it deletes the exposure data
// of processes silent for ExposureRetention. MemoryStore implements it.
//
// The contract, for drivers: DeleteCounts removes the value and the
// sequence of id under name (as PutCounts wrote them; name may be a gate
// name or "exposure/" and one); deleting what is absent is not an error. A
// later PutCounts of id under name writes whatever its sequence.
type CountsDeleter interface {
	DeleteCounts(ctx context.Context, name, id string) error
}

// countsValue is what a Guard writes with PutCounts: its cumulative
// counts and when it wrote them.
type countsValue struct {
	rollout.Counts
	Sent time.Time `json:"sent,omitzero"`
}

// fold folds the counts of processes that stopped writing into the
// holder's state, stores the state, then deletes their entries; and
// deletes exposure data kept past ExposureRetention. A process whose
// entry had no time (an older writer) is never folded.
func (gd *Guard) fold(ctx context.Context, name string, entries map[string]countsValue) error {
	del, ok := gd.store.(CountsDeleter)
	if !ok {
		return nil
	}
	now := time.Now()
	next := *gd.fleet
	next.FoldedIDs = maps.Clone(next.FoldedIDs)
	if next.FoldedIDs == nil {
		next.FoldedIDs = make(map[string]time.Time)
	}
	var gone []string
	for id, c := range entries {
		if _, folded := next.FoldedIDs[id]; folded {
			gone = append(gone, id) // folded before, not deleted yet
			continue
		}
		if !c.Sent.IsZero() && now.Sub(c.Sent) > FoldAfter {
			next.Folded = next.Folded.Add(c.Counts)
			next.FoldedIDs[id] = now
			gone = append(gone, id)
		}
	}
	changed := len(gone) > 0
	for id, at := range next.FoldedIDs {
		if _, present := entries[id]; !present && now.Sub(at) > foldMemory {
			delete(next.FoldedIDs, id)
			changed = true
		}
	}
	for len(next.FoldedIDs) > maxFolded { // forget the oldest gone ones
		oldest := ""
		for id, at := range next.FoldedIDs {
			if _, present := entries[id]; !present && (oldest == "" || at.Before(next.FoldedIDs[oldest])) {
				oldest = id
			}
		}
		if oldest == "" {
			break
		}
		delete(next.FoldedIDs, oldest)
	}
	if changed {
		// The state first: once it holds them, the entries count once
		// whether or not the deletes below succeed.
		next.Seq++
		b, _ := json.Marshal(&next)
		if err := gd.store.PutCounts(ctx, name, stateID, next.Seq, b); err != nil {
			return err
		}
		*gd.fleet = next
		for _, id := range gone {
			if err := del.DeleteCounts(ctx, name, id); err != nil {
				return err
			}
		}
	}
	all, err := gd.store.Counts(ctx, exposurePrefix+name)
	if err != nil {
		return err
	}
	for id, v := range all {
		var x struct {
			Sent time.Time `json:"sent"`
		}
		if json.Unmarshal(v, &x) == nil && !x.Sent.IsZero() && now.Sub(x.Sent) > ExposureRetention {
			if err := del.DeleteCounts(ctx, exposurePrefix+name, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteCounts implements CountsDeleter.
func (m *MemoryStore) DeleteCounts(ctx context.Context, name, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.counts[name], id)
	return nil
}

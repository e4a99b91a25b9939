package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

// exposurePrefix prefixes the gate name under which every instance's Guard
// writes its exposure data with PutCounts, beside its counts: no gate name
// contains '/', so it names no gate's counts.
const exposurePrefix = "exposure/"

// exposureWindows is how many of its latest windows (rollout events) an
// instance writes with its exposure data.
const exposureWindows = 32

// exposureEvery is how often at most a Guard writes its instance's
// exposure data while the gate does not change; a change is written the
// next batch.
const exposureEvery = time.Second

// maxExposureBytes bounds an instance's exposure data read from a store:
// it is untrusted input.
const maxExposureBytes = 1 << 20

// MaxFailures bounds the failed calls an Exposure lists: the most recent
// ones of all instances.
const MaxFailures = 1000

// exposureRecord is what an instance's Guard writes (putExposure): its
// gate's exposure (rollout.Gate.Exposure) over its latest
// exposureWindows windows, with its failure sample.
type exposureRecord struct {
	Instance string    `json:"instance"`
	Sent     time.Time `json:"sent"`
	rollout.Report
}

// parseExposure decodes an instance's exposure data read from a store.
func parseExposure(data []byte) (exposureRecord, error) {
	if len(data) > maxExposureBytes {
		return exposureRecord{}, fmt.Errorf("%w: exposure of %d bytes, more than %d", ErrMalformed, len(data), maxExposureBytes)
	}
	var x exposureRecord
	if err := json.Unmarshal(data, &x); err != nil {
		return exposureRecord{}, fmt.Errorf("%w: exposure: %v", ErrMalformed, err)
	}
	if x.Instance == "" {
		return exposureRecord{}, fmt.Errorf("%w: exposure without an instance", ErrMalformed)
	}
	for _, w := range x.Windows {
		if w.Event.Percent < 0 || w.Event.Percent > 100 || w.Event.At.IsZero() {
			return exposureRecord{}, fmt.Errorf("%w: exposure window with percent %v at %v", ErrMalformed, w.Event.Percent, w.Event.At)
		}
	}
	return x, nil
}

// exposureOf is the exposure data of gate, whose history is h, that its
// Guard writes.
func exposureOf(gate *rollout.Gate, h []rollout.Event, id string, now time.Time) exposureRecord {
	from := h[max(len(h)-exposureWindows, 0)].At
	return exposureRecord{Instance: id, Sent: now, Report: gate.Exposure(from, now)}
}

type exposures struct {
	records    []exposureRecord // sorted by instance
	unreadable int
}

// readExposures reads every instance's exposure data of gate name.
func readExposures(ctx context.Context, store GuardStore, name string) (exposures, error) {
	all, err := store.Counts(ctx, exposurePrefix+name)
	if err != nil {
		return exposures{}, fmt.Errorf("fleet: read exposure of %q: %w", name, err)
	}
	var x exposures
	for _, v := range all {
		r, err := parseExposure(v)
		if err != nil {
			x.unreadable++
			continue
		}
		x.records = append(x.records, r)
	}
	slices.SortFunc(x.records, func(a, b exposureRecord) int {
		return cmp.Or(strings.Compare(a.Instance, b.Instance), a.Sent.Compare(b.Sent))
	})
	return x, nil
}

// Exposure is a gate's exposure across the fleet over a range of time
// (ReadExposure): when and how far the new path was live, what its calls
// did on every instance, and which keys it failed. It encodes to JSON. The
// zero value is the exposure of a range that nothing covers.
type Exposure struct {
	// Gate and Salt name the gate; rollout.Bucket(Salt, key) tells which
	// keys a window's percent enabled.
	Gate string `json:"gate"`
	Salt string `json:"salt"`
	// From and To are the range asked for.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Partial reports that the fleet history may have lost entries
	// (History.Partial).
	Partial bool `json:"partial,omitempty"`
	// Windows are the spans of constant fleet state that overlap the
	// range, oldest first, whole.
	Windows []ExposureWindow `json:"windows"`
	// New are the new arm's outcomes in the range, pooled from every
	// instance.
	New rollout.OutcomeCounts `json:"new"`
	// Instances are the instances that reported exposure data.
	Instances []InstanceExposure `json:"instances"`
	// Failures are the sampled failed calls of the new arm in the range,
	// of every instance, oldest first: each instance's last
	// rollout.MaxFailureSamples, at most MaxFailures in all.
	Failures []FailedCall `json:"failures"`
	// Unreadable counts history entries and exposure data that could not
	// be decoded.
	Unreadable int `json:"unreadable,omitempty"`
}

// ExposureWindow is a span of time during which the fleet's state of a
// gate did not change. The zero value is an empty window.
type ExposureWindow struct {
	// From is the time of the entry that began it; To that of the entry
	// that ended it, or the zero time for the window still open.
	From time.Time `json:"from"`
	To   time.Time `json:"to,omitzero"`
	// Percent is the highest percent of a live instance (of any instance
	// if none is live); Killed reports that every instance was killed;
	// Live that some instance routed keys to the new path.
	Percent float64 `json:"percent"`
	Killed  bool    `json:"killed"`
	Live    bool    `json:"live"`
	// Entry is the change that began the window.
	Entry HistoryEntry `json:"entry"`
	// New are the new arm's outcomes in the window, pooled: each
	// instance's window counts in the fleet window in which it began.
	New rollout.OutcomeCounts `json:"new"`
}

// InstanceExposure is what one instance reported.
type InstanceExposure struct {
	ID string `json:"id"`
	// Sent is when it wrote its exposure data last.
	Sent time.Time `json:"sent"`
	// New are its new arm's outcomes in the range.
	New rollout.OutcomeCounts `json:"new"`
}

// FailedCall is a failed call of the new arm on an instance.
type FailedCall struct {
	rollout.Failure
	Instance string `json:"instance"`
}

// ReadExposure reports gate name's exposure across the fleet from from to
// to: the windows of the fleet history (ReadHistory) that overlap the
// range, each with the new arm's outcomes pooled from every instance, and
// the failed calls the instances sampled in the range. Every instance's
// fleet Guard writes its exposure data, its windows and failure sample, in
// the batch after each change of the gate and otherwise at most once a
// second (every batch at the default interval), so the report's changes
// are at most a batch old and its counts a second and a batch. It needs a
// HistoryStore.
func ReadExposure(ctx context.Context, store Store, name string, from, to time.Time) (Exposure, error) {
	h, x, err := readHistory(ctx, store, name)
	if err != nil {
		return Exposure{}, err
	}
	rep := Exposure{Gate: name, Salt: h.Salt, From: from, To: to, Partial: h.Partial, Unreadable: h.Unreadable,
		Windows: []ExposureWindow{}, Instances: []InstanceExposure{}, Failures: []FailedCall{}}
	all := h.windows()
	// An instance's window counts in the fleet window in which it began
	// (or the range did).
	counts := make([]rollout.OutcomeCounts, len(all))
	for _, r := range x.records {
		in := InstanceExposure{ID: r.Instance, Sent: r.Sent}
		for _, w := range r.Windows {
			if !overlaps(w.From, w.To, from, to) {
				continue
			}
			in.New = addOutcomes(in.New, w.New)
			start := w.From
			if start.Before(from) {
				start = from
			}
			if i := sort.Search(len(all), func(i int) bool { return all[i].From.After(start) }) - 1; len(all) > 0 {
				counts[max(i, 0)] = addOutcomes(counts[max(i, 0)], w.New)
			}
		}
		rep.New = addOutcomes(rep.New, in.New)
		rep.Instances = append(rep.Instances, in)
		for _, f := range r.Failures {
			if !f.At.Before(from) && !f.At.After(to) {
				rep.Failures = append(rep.Failures, FailedCall{f, r.Instance})
			}
		}
	}
	for i, w := range all {
		if overlaps(w.From, w.To, from, to) {
			w.New = counts[i]
			rep.Windows = append(rep.Windows, w)
		}
	}
	slices.SortStableFunc(rep.Failures, func(a, b FailedCall) int { return a.At.Compare(b.At) })
	if n := len(rep.Failures); n > MaxFailures {
		rep.Failures = rep.Failures[n-MaxFailures:]
	}
	return rep, nil
}

// overlaps reports whether the window [wFrom, wTo) (wTo zero: open)
// overlaps the range [from, to].
func overlaps(wFrom, wTo, from, to time.Time) bool {
	return !wFrom.After(to) && (wTo.IsZero() || wTo.After(from))
}

// windows replays the history into the spans of constant fleet state.
func (h History) windows() []ExposureWindow {
	var r replayed
	var ws []ExposureWindow
	for _, e := range h.Entries {
		r.apply(e)
		p, killed, live := r.summary()
		if n := len(ws); n > 0 && ws[n-1].Percent == p && ws[n-1].Killed == killed && ws[n-1].Live == live {
			continue
		}
		if n := len(ws); n > 0 {
			ws[n-1].To = e.At
		}
		ws = append(ws, ExposureWindow{From: e.At, Percent: p, Killed: killed, Live: live, Entry: e})
	}
	return ws
}

func addOutcomes(a, b rollout.OutcomeCounts) rollout.OutcomeCounts {
	return rollout.OutcomeCounts{OK: a.OK + b.OK, Error: a.Error + b.Error, Panic: a.Panic + b.Panic,
		Invalid: a.Invalid + b.Invalid, Timeout: a.Timeout + b.Timeout, Mismatches: a.Mismatches + b.Mismatches}
}

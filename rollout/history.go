package rollout

import (
	"sort"
	"time"
)

// HistorySize is the number of events a gate keeps in its history
// (Gate.History): the last HistorySize changes of its state.
const HistorySize = 256

// Kinds of Event: what changed the gate.
const (
	// EventCreated is the gate's creation by New, at its initial percent.
	EventCreated = "created"
	// EventPercent is a percent set by SetPercent or a config.
	EventPercent = "percent"
	// EventStep is a promotion of the schedule to its next step.
	EventStep = "step"
	// EventKill is a kill: by a call, a config or the guard's verdict.
	EventKill = "kill"
	// EventResume is a resume.
	EventResume = "resume"
)

// SourceSchedule is the Event.Source of a schedule promotion.
const SourceSchedule = "schedule"

// Event is one change of a gate's state, as Gate.History reports it. The
// zero value is no event.
type Event struct {
	// Seq numbers the gate's events from 0 (its creation). A history whose
	// first Seq is not 0 has lost its oldest events to the bound
	// HistorySize.
	Seq uint64 `json:"seq"`
	// At is the time of the change, by the gate's clock (WithClock).
	// Events are in order of At: a clock that goes back is clamped to the
	// previous event's time.
	At time.Time `json:"at"`
	// Kind is EventCreated, EventPercent, EventStep, EventKill or
	// EventResume.
	Kind string `json:"kind"`
	// Source is who made the change: KilledByCall (a call of Kill,
	// SetPercent or Resume: the service or the admin handler),
	// KilledByConfig, KilledByGuard (the guard's verdict, with its numbers
	// in Reason), KilledByFleet (applied from a fleet store, see KillBy) or
	// SourceSchedule; empty for EventCreated.
	Source string `json:"source,omitempty"`
	// Reason is the reason of a kill.
	Reason string `json:"reason,omitempty"`
	// Percent and Killed are the gate's state after the change: the
	// configured percent, and whether it is killed (then no key is
	// enabled).
	Percent float64 `json:"percent"`
	Killed  bool    `json:"killed"`

	units uint32
	calls newArmCounts // cumulative new-arm outcomes when the event was recorded
}

// newArmCounts are the new arm's cumulative outcomes, by outcome, and its
// Shadow mismatches last.
type newArmCounts [numOutcomes + 1]int64

// newArmCountsNow reads the gate's cumulative new-arm outcomes.
func (g *Gate) newArmCountsNow() newArmCounts {
	var c newArmCounts
	for o := range numOutcomes {
		c[o] = g.stats.calls.Load(callIndex(armNew, o))
	}
	c[numOutcomes] = g.stats.mismatches.Load(0)
	return c
}

// recordLocked appends an event with the gate's state after a change to the
// history. g.mu must be held. It runs on changes only, never on Enabled.
func (g *Gate) recordLocked(at time.Time, kind, source, reason string) {
	if n := len(g.hist); n > 0 {
		if last := g.eventLocked(n - 1).At; at.Before(last) {
			at = last
		}
	}
	e := Event{Seq: g.histSeq, At: at, Kind: kind, Source: source, Reason: reason,
		Percent: unitsPercent(g.units), Killed: g.killed, units: g.units, calls: g.newArmCountsNow()}
	g.histSeq++
	if len(g.hist) < HistorySize {
		g.hist = append(g.hist, e)
		return
	}
	g.hist[g.histNext] = e
	g.histNext = (g.histNext + 1) % HistorySize
}

// eventLocked returns the i-th retained event, oldest first. g.mu must be
// held.
func (g *Gate) eventLocked(i int) *Event {
	if len(g.hist) < HistorySize {
		return &g.hist[i]
	}
	return &g.hist[(g.histNext+i)%HistorySize]
}

// History returns the gate's retained events, oldest first: its creation
// and every change of percent (SetPercent, config, schedule step), kill
// (with its source: a call, the config or the guard's verdict) and resume,
// up to the last HistorySize of them. Enabled records nothing. The result
// is a copy; it is never empty, since a gate records its creation.
func (g *Gate) History() []Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Event, len(g.hist))
	for i := range out {
		out[i] = *g.eventLocked(i)
	}
	return out
}

// stateAtLocked returns the index of the last retained event at or before
// at, or -1 if there is none. g.mu must be held.
func (g *Gate) stateAtLocked(at time.Time) int {
	n := len(g.hist)
	i := sort.Search(n, func(i int) bool { return g.eventLocked(i).At.After(at) })
	return i - 1
}

// WasEnabled reports whether the gate routed key to the new path at the
// moment at: whether, by the gate's history, the gate was live at at and
// key's bucket (Bucket with the gate's salt) was below the percent then in
// force. It answers from the history and the hash alone, so it can name
// the keys a bad rollout affected after the fact, for any key, whether or
// not it was seen.
//
// Limits: it knows only the retained history (HistorySize events; see
// History) and answers false for a time before the oldest retained event,
// as it does before the gate's creation. It assumes the salt has not
// changed: it hashes with the gate's salt now, so it is wrong about times
// when a process ran this gate with another salt (WithSalt) or another
// name. A change takes effect at its recorded time: a call whose Enabled
// ran just before a change was recorded, on another goroutine, may have
// seen the state before it. Changes made only in other processes (a fleet
// without this instance) are not in this gate's history.
func (g *Gate) WasEnabled(key string, at time.Time) bool {
	g.mu.Lock()
	i := g.stateAtLocked(at)
	var e Event
	if i >= 0 {
		e = *g.eventLocked(i)
	}
	g.mu.Unlock()
	if i < 0 || e.Killed || e.units == 0 {
		return false
	}
	return e.units >= Buckets || bucketOf(g.seed, key) < e.units
}

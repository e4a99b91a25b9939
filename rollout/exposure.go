package rollout

import (
	"sync"
	"time"
)

// MaxFailureSamples is the number of failed calls of the new arm that a gate
// keeps for Gate.Exposure: the last MaxFailureSamples, with their keys.
const MaxFailureSamples = 100

// OutcomeMismatch is the Failure.Outcome of a call of the new arm by Shadow
// that succeeded with a result unequal to the old arm's.
const OutcomeMismatch = "mismatch"

// Report is the exposure of a gate over a range of time, as Gate.Exposure
// reports it: when and how far the new path was live, what its calls did,
// and which keys it failed. It encodes to JSON. The zero value is the
// report of a range that no history covers.
type Report struct {
	// Gate and Salt name the gate; Bucket(Salt, key) tells which keys a
	// window's percent enabled.
	Gate string `json:"gate"`
	Salt string `json:"salt"`
	// From and To are the range asked for.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Partial reports that the retained history starts after From: older
	// events were dropped (HistorySize), so the report misses the start of
	// the range.
	Partial bool `json:"partial,omitempty"`
	// Windows are the spans of constant state that overlap the range,
	// oldest first, whole (not cut at From and To).
	Windows []Window `json:"windows"`
	// Failures are the sampled failed calls of the new arm within the
	// range, oldest first: at most MaxFailureSamples over the gate's
	// life, the most recent ones.
	Failures []Failure `json:"failures"`
}

// Window is a span of time during which a gate's state did not change: its
// percent, and whether it was killed. The zero value is an empty window.
type Window struct {
	// From is the time of the event that began it; To that of the next
	// event, or the zero time for the window still open.
	From time.Time `json:"from"`
	To   time.Time `json:"to,omitzero"`
	// Percent is the configured percent, Killed whether the gate was
	// killed (then no key was enabled), and Live whether keys were routed
	// to the new path: not killed and Percent above 0.
	Percent float64 `json:"percent"`
	Killed  bool    `json:"killed"`
	Live    bool    `json:"live"`
	// Event is the change that began the window.
	Event Event `json:"event"`
	// New are the new arm's outcomes recorded during the window. A call is
	// counted in the window in which it ended, so a call routed just
	// before a change may count in the window after it.
	New OutcomeCounts `json:"new"`
}

// OutcomeCounts are calls of the new arm by outcome, and Shadow's
// comparisons that found a mismatch. The zero value has no calls.
type OutcomeCounts struct {
	OK         int64 `json:"ok"`
	Error      int64 `json:"error"`
	Panic      int64 `json:"panic"`
	Invalid    int64 `json:"invalid"`
	Timeout    int64 `json:"timeout"`
	Mismatches int64 `json:"mismatches"`
}

func (c newArmCounts) outcomes(b newArmCounts) OutcomeCounts {
	d := func(i int) int64 { return c[i] - b[i] }
	return OutcomeCounts{d(int(outOK)), d(int(outError)), d(int(outPanic)), d(int(outInvalid)),
		d(int(outTimeout)), d(int(numOutcomes))}
}

// Failure is one failed call of the new arm. The zero value is no failure.
type Failure struct {
	// Key is the key the call was routed by.
	Key string `json:"key"`
	// Outcome is OutcomeError, OutcomePanic, OutcomeInvalid, OutcomeTimeout
	// or OutcomeMismatch.
	Outcome string `json:"outcome"`
	// At is when the call ended, by the gate's clock.
	At time.Time `json:"at"`
}

// failureRing holds the last MaxFailureSamples failures of the new arm.
type failureRing struct {
	mu   sync.Mutex
	buf  []Failure
	next int
}

// failed samples a failed call of the new arm. It runs on failures only:
// the success path neither reads the clock nor takes the lock.
func (g *Gate) failed(key string, o outcome, mismatch bool) {
	name := outcomeNames[o]
	if mismatch {
		name = OutcomeMismatch
	}
	f := Failure{Key: key, Outcome: name, At: g.now()}
	r := &g.failures
	r.mu.Lock()
	if len(r.buf) < MaxFailureSamples {
		r.buf = append(r.buf, f)
	} else {
		r.buf[r.next] = f
		r.next = (r.next + 1) % MaxFailureSamples
	}
	r.mu.Unlock()
}

// Exposure reports the gate's exposure from from to to: the windows of its
// history that overlap the range, each with its percent, kill state and the
// new arm's outcomes in it, and the sampled failures of the new arm within
// the range (see Report). It knows what this gate's history retains
// (HistorySize events, MaxFailureSamples failures) and the calls of this
// process's Paths.
func (g *Gate) Exposure(from, to time.Time) Report {
	rep := Report{Gate: g.name, Salt: g.salt, From: from, To: to, Windows: []Window{}, Failures: []Failure{}}
	g.mu.Lock()
	n := len(g.hist)
	first := *g.eventLocked(0)
	rep.Partial = first.Seq > 0 && first.At.After(from)
	cur := g.newArmCountsNow()
	for i := max(g.stateAtLocked(from), 0); i < n; i++ {
		e := *g.eventLocked(i)
		if e.At.After(to) {
			break
		}
		w := Window{From: e.At, Percent: e.Percent, Killed: e.Killed, Live: !e.Killed && e.units > 0, Event: e}
		end := cur
		if i+1 < n {
			next := g.eventLocked(i + 1)
			w.To, end = next.At, next.calls
			if !w.To.After(from) {
				continue // ended at the start of the range
			}
		}
		w.New = end.outcomes(e.calls)
		rep.Windows = append(rep.Windows, w)
	}
	g.mu.Unlock()

	r := &g.failures
	r.mu.Lock()
	for i := range r.buf {
		f := r.buf[(r.next+i)%len(r.buf)]
		if !f.At.Before(from) && !f.At.After(to) {
			rep.Failures = append(rep.Failures, f)
		}
	}
	r.mu.Unlock()
	return rep
}

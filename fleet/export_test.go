package fleet

import "github.com/blastradius/blastradius/rollout"

// Parsers of untrusted content, for the fuzz tests.
var (
	ParseRecord   = parseRecord
	ParseInstance = parseInstance
	ParseCache    = parseCache
	ParseEntry    = parseEntry
	ParseExposure = func(b []byte) error { _, err := parseExposure(b); return err }
	EncodeCache   = encodeCache
)

// MsgReadFailed is the log message of a failed store read.
const MsgReadFailed = msgReadFailed

// MsgGuardLocal is the log message of a Guard that falls back to its
// instance's counts.
const MsgGuardLocal = msgGuardLocal

// SetCounts replaces the source of gd's instance counts, so that tests
// can simulate traffic without running Paths.
func SetCounts(gd *Guard, f func() rollout.Counts) { gd.counts = f }

// Judge returns the fleet guard's checkpoint rule, started at cur: it
// takes cumulative counts and whether the gate is killed, and returns the
// reason of a trip or "". It is the rule a Guard applies to pooled counts.
func Judge(t *rollout.GuardTest, cur rollout.Counts) func(rollout.Counts, bool) string {
	return newVerdictState(t, cur).observe
}

package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/blastradius/blastradius/rollout"
)

// Operations a record carries: the value of its "op" field.
const (
	// OpConfig publishes a whole rollout config document.
	OpConfig = "config"
	// OpKill kills one gate.
	OpKill = "kill"
	// OpResume resumes one gate.
	OpResume = "resume"
	// OpPercent sets one gate's percent.
	OpPercent = "percent"
)

// Record keys. A kill and a resume of a gate share one key, so the latest of
// them is the gate's switch; a percent has its own, so a percent set after a
// kill does not hide the kill from an instance that missed both.
const (
	keyConfig        = "config"
	keyKillPrefix    = "kill/"
	keyPercentPrefix = "percent/"
)

// MaxRecordBytes bounds a record's value: a config document of at most
// rollout.MaxConfigBytes plus the envelope. Records are untrusted input.
const MaxRecordBytes = rollout.MaxConfigBytes + 4<<10

// maxReason bounds a kill reason, as rollout's admin handler does.
const maxReason = 1024

// ErrMalformed is wrapped by the error of a record, heartbeat or cache file
// that cannot be decoded.
var ErrMalformed = errors.New("fleet: malformed content")

// Op is the decoded value of a record: one operation.
type Op struct {
	// Op is OpConfig, OpKill, OpResume or OpPercent.
	Op string `json:"op"`
	// Gate names the gate of a kill, resume or percent.
	Gate string `json:"gate,omitempty"`
	// Reason is the reason of a kill.
	Reason string `json:"reason,omitempty"`
	// Percent is the percent of OpPercent.
	Percent *float64 `json:"percent,omitempty"`
	// Config is the document of OpConfig, as rollout.Registry.LoadConfig
	// reads it.
	Config json.RawMessage `json:"config,omitempty"`
	// By says who published it (Publisher's WithActor).
	By string `json:"by,omitempty"`
}

// key returns the record key the operation is stored under.
func (o Op) key() string {
	switch o.Op {
	case OpConfig:
		return keyConfig
	case OpKill, OpResume:
		return keyKillPrefix + o.Gate
	default:
		return keyPercentPrefix + o.Gate
	}
}

// parseRecord decodes and checks a record read from a store under key.
// Unknown fields are ignored, so that a newer publisher's records still
// reach older instances; an unknown op is an error.
func parseRecord(key string, value []byte) (Op, error) {
	if len(value) > MaxRecordBytes {
		return Op{}, fmt.Errorf("%w: record %q is %d bytes, more than %d", ErrMalformed, key, len(value), MaxRecordBytes)
	}
	var o Op
	if err := json.Unmarshal(value, &o); err != nil {
		return Op{}, fmt.Errorf("%w: record %q: %v", ErrMalformed, key, err)
	}
	switch o.Op {
	case OpConfig:
		if len(bytes.TrimSpace(o.Config)) == 0 || bytes.Equal(bytes.TrimSpace(o.Config), []byte("null")) {
			return Op{}, fmt.Errorf("%w: record %q: config op without \"config\"", ErrMalformed, key)
		}
	case OpKill, OpResume, OpPercent:
		if o.Gate == "" || len(o.Gate) > 128 || strings.ContainsAny(o.Gate, "/\x00") {
			return Op{}, fmt.Errorf("%w: record %q: bad gate name %q", ErrMalformed, key, o.Gate)
		}
		if len(o.Reason) > maxReason {
			return Op{}, fmt.Errorf("%w: record %q: reason longer than %d bytes", ErrMalformed, key, maxReason)
		}
		if (o.Op == OpPercent) != (o.Percent != nil) {
			return Op{}, fmt.Errorf("%w: record %q: \"percent\" belongs to, and only to, a percent op", ErrMalformed, key)
		}
	default:
		return Op{}, fmt.Errorf("%w: record %q: unknown op %q", ErrMalformed, key, o.Op)
	}
	if o.key() != key {
		return Op{}, fmt.Errorf("%w: record %q holds a %s op for key %q", ErrMalformed, key, o.Op, o.key())
	}
	return o, nil
}

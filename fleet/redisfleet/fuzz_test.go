package redisfleet_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/blastradius/blastradius/fleet/redisfleet"
)

// A field of the records hash is untrusted: anything with write access to
// Redis can put bytes there.
func FuzzParseRecord(f *testing.F) {
	f.Add("kill/g", `3 1700000000 123456 {"op":"kill","gate":"g"}`)
	f.Add("config", `1 0 0 `)
	f.Add("x", `-1 1 1 v`)
	f.Add("x", `1 1 1000000 v`)
	f.Add("x", `nonsense`)
	f.Fuzz(func(t *testing.T, key, field string) {
		r, err := redisfleet.ParseRecord(key, field)
		if err != nil {
			if !errors.Is(err, redisfleet.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if r.Version == 0 || r.Key != key || !strings.HasSuffix(field, string(r.Value)) {
			t.Fatalf("accepted %+v from %q", r, field)
		}
	})
}

func FuzzParseHeartbeats(f *testing.F) {
	f.Add("1700000000000", "i0", "1700000005000", `{"id":"i0"}`)
	f.Add("x", "i0", "1", "")
	f.Add("1", "i0", "1e400", "")
	f.Fuzz(func(t *testing.T, now, id, score, value string) {
		res := []any{now, []any{id, score}, []any{id, value}}
		hs, err := redisfleet.ParseHeartbeats(res)
		if err != nil {
			if !errors.Is(err, redisfleet.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(hs) != 1 || hs[0].ID != id || string(hs[0].Value) != value {
			t.Fatalf("parsed %+v", hs)
		}
	})
}

func TestParseSnapshotRejectsBadShapes(t *testing.T) {
	for name, res := range map[string][]any{
		"short":      {"e"},
		"odd fields": {"e", int64(1), []any{"k"}},
		"bad epoch":  {int64(3), int64(1), []any{}},
		"neg":        {"e", int64(-1), []any{}},
		"bad record": {"e", int64(1), []any{"k", "x"}},
		"not a list": {"e", int64(1), "k"},
	} {
		if _, err := redisfleet.ParseSnapshot(res); !errors.Is(err, redisfleet.ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	s, err := redisfleet.ParseSnapshot([]any{nil, nil, []any{}})
	if err != nil || s.Epoch != "" || s.Version != 0 {
		t.Errorf("empty store: %+v, %v", s, err)
	}
}

package fleet_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/blastradius/blastradius/fleet"
)

// Records come from a store anyone with write access can fill: decoding
// must never panic, and must accept only what it can apply.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []struct{ key, value string }{
		{"kill/checkout-v2", `{"op":"kill","gate":"checkout-v2","reason":"INC-1","by":"a@b"}`},
		{"kill/checkout-v2", `{"op":"resume","gate":"checkout-v2"}`},
		{"percent/g", `{"op":"percent","gate":"g","percent":12.5}`},
		{"config", `{"op":"config","config":{"version":"1","gates":[]}}`},
		{"config", `{"op":"config","config":null}`},
		{"kill/a", `{"op":"kill","gate":"b"}`},
		{"x", `{"op":"launch"}`},
		{"kill/a", `[`},
	} {
		f.Add(s.key, []byte(s.value))
	}
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		op, err := fleet.ParseRecord(key, value)
		if err != nil {
			if !errors.Is(err, fleet.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		switch op.Op {
		case fleet.OpConfig:
			if len(op.Config) == 0 || key != "config" {
				t.Fatalf("accepted config op %+v under %q", op, key)
			}
		case fleet.OpKill, fleet.OpResume, fleet.OpPercent:
			if op.Gate == "" || (op.Op == fleet.OpPercent) != (op.Percent != nil) {
				t.Fatalf("accepted %+v", op)
			}
		default:
			t.Fatalf("accepted unknown op %q", op.Op)
		}
	})
}

func FuzzParseInstance(f *testing.F) {
	f.Add([]byte(`{"id":"i0","applied":{"epoch":"e","version":3},"gates":[{"name":"g","percent":5,"killed":true}]}`))
	f.Add([]byte(`{"id":""}`))
	f.Add([]byte(`{"id":"x","rejected":{"key":"config","version":1,"error":"e"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := fleet.ParseInstance(data)
		if err != nil {
			if !errors.Is(err, fleet.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if in.ID == "" {
			t.Fatal("accepted a heartbeat without an id")
		}
	})
}

func FuzzParseCache(f *testing.F) {
	good, err := fleet.EncodeCache(fleet.Snapshot{Head: fleet.Head{Epoch: "e", Version: 2}, Records: []fleet.Record{
		{Key: "kill/g", Version: 2, Value: []byte(`{"op":"kill","gate":"g"}`), Published: time.Unix(1, 0)},
	}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"epoch":"e","version":1,"records":[{"key":"a","version":2}]}`))
	f.Add([]byte(`{"epoch":"","version":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := fleet.ParseCache(data)
		if err != nil {
			if !errors.Is(err, fleet.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if s.Epoch == "" {
			t.Fatal("accepted a cache without an epoch")
		}
		for _, r := range s.Records {
			if r.Version == 0 || r.Version > s.Version {
				t.Fatalf("accepted record %q at version %d of %d", r.Key, r.Version, s.Version)
			}
		}
		// What was accepted survives a round trip.
		again, err := fleet.EncodeCache(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := fleet.ParseCache(again)
		if err != nil || s2.Head != s.Head || len(s2.Records) != len(s.Records) {
			t.Fatalf("round trip: %+v, %v", s2.Head, err)
		}
		for i := range s.Records {
			if !bytes.Equal(s.Records[i].Value, s2.Records[i].Value) {
				t.Fatal("round trip changed a value")
			}
		}
	})
}

// History entries and exposure data come from the store too.
func FuzzParseHistory(f *testing.F) {
	f.Add([]byte(`{"at":"2026-11-30T09:00:00Z","kind":"kill","source":"fleet","by":"a@b","version":3,"reason":"INC-1"}`))
	f.Add([]byte(`{"at":"2026-11-30T09:00:00Z","kind":"config","percent":12.5,"killed":true}`))
	f.Add([]byte(`{"at":"2026-11-30T09:00:00Z","kind":"percent","percent":-1}`))
	f.Add([]byte(`{"instance":"i0","sent":"2026-11-30T09:00:00Z","gate":"g","salt":"g","windows":[{"from":"2026-11-30T09:00:00Z","percent":5,"event":{"seq":0,"at":"2026-11-30T09:00:00Z","kind":"created","percent":5,"killed":false}}],"failures":[{"key":"k","outcome":"error","at":"2026-11-30T09:00:01Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := fleet.ParseEntry(data)
		if err != nil && !errors.Is(err, fleet.ErrMalformed) {
			t.Fatalf("entry error %v does not wrap ErrMalformed", err)
		}
		if err == nil {
			if e.Kind == "" || e.At.IsZero() || e.Percent != nil && (*e.Percent < 0 || *e.Percent > 100) {
				t.Fatalf("accepted %+v", e)
			}
			// Whatever was accepted replays without panicking.
			h := fleet.History{Gate: "g", Salt: "g", Entries: []fleet.HistoryEntry{e, e}}
			_ = h.WasEnabled("k", e.At)
		}
		if err := fleet.ParseExposure(data); err != nil && !errors.Is(err, fleet.ErrMalformed) {
			t.Fatalf("exposure error %v does not wrap ErrMalformed", err)
		}
	})
}

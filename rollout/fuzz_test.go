package rollout_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/blastradius/blastradius/rollout"
)

func FuzzLoadConfig(f *testing.F) {
	for _, seed := range []string{
		goodConfig,
		`{"version":"1","gates":[]}`,
		`{"version":"2","gates":[{"name":"search-v3","percent":99.9999,"killed":true,"reason":"x"}]}`,
		`{"version":"2","gates":[{"name":"power-peg","percent":100}]}`,
		`{"version":"2","gates":[{"name":"nope"}]}`,
		`{"version":"2","gates":[{"name":"search-v3"},{"name":"search-v3"}]}`,
		`{"version":"2","gates":[{"name":"search-v3","percent":1e400}]}`,
		`{"version":"2","gates":[{"name":"search-v3","percent":-0}]}`,
		`{"version":"2","gates":[{"name":"search-v3","pecent":5}]}`,
		`{"version":"2","gates":[`,
		`{"version":"2","gates":[]} x`,
		`null`,
		``,
		`{"version":"2","gates":[{"name":"checkout-v2","killed":true,"killed":false}]}`,
		`{"version":"2","gates":[{"name":"power-peg","name":"search-v3","percent":100}]}`,
		`{"version":"2","gates":[{"NAME":"search-v3","KILLED":true}]}`,
		`{"version":"2","Gates":[{"name":"search-v3","percent":100}]}`,
		`{"version":"2","gates":[{"name":"search-v3","n\u0061me":"checkout-v2"}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		reg := newTestRegistry(t)
		if _, err := reg.LoadConfig(bytes.NewReader([]byte(goodConfig))); err != nil {
			t.Fatal(err)
		}
		before := reg.Config()
		info, err := reg.LoadConfig(bytes.NewReader(data))
		if err != nil {
			var ce *rollout.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not a *ConfigError", err, err)
			}
			known := false
			for _, s := range []error{rollout.ErrUnknownGate, rollout.ErrRetired, rollout.ErrOutOfRange,
				rollout.ErrMalformed, rollout.ErrDuplicate, rollout.ErrTooLarge} {
				known = known || errors.Is(err, s)
			}
			if !known {
				t.Fatalf("error %v matches no sentinel", err)
			}
			if reg.Config() != before {
				t.Fatalf("rejected config changed the applied config")
			}
			return
		}
		if err := exactKeys(data); err != nil {
			t.Fatalf("accepted a document with %v: %s", err, data)
		}
		if reg.Config() != info || info.Hash == "" || info.Version == "" {
			t.Fatalf("applied %+v, Config() %+v", info, reg.Config())
		}
		again, err := reg.LoadConfig(bytes.NewReader(data))
		if err != nil || again.Hash != info.Hash {
			t.Fatalf("reloading the same document: %+v %v, first %+v", again, err, info)
		}
		for _, g := range reg.Gates() {
			st := g.Status()
			if st.Percent < 0 || st.Percent > 100 {
				t.Fatalf("gate %s at %v%%", st.Name, st.Percent)
			}
		}
	})
}

// exactKeys checks, independently of the loader, that every object of a
// config document has only the keys its position allows, spelled exactly,
// each once.
func exactKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	allowed := map[int][]string{
		0: {"version", "gates"},                    // the document
		2: {"name", "percent", "killed", "reason"}, // an entry of "gates"
	}
	var walk func(depth int) error
	walk = func(depth int) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return err
				}
				key := tok.(string)
				if !slices.Contains(allowed[depth], key) {
					return fmt.Errorf("key %q at depth %d", key, depth)
				}
				if seen[key] {
					return fmt.Errorf("key %q twice", key)
				}
				seen[key] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		}
		return err
	}
	return walk(0)
}

package rollout_test

import (
	"bytes"
	"errors"
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

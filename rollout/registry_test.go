package rollout_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"

	"go.opentelemetry.io/otel/attribute"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/rollout"
)

// newTestRegistry registers gates "checkout-v2" (5%) and "search-v3" (0%)
// and retires "power-peg".
func newTestRegistry(t testing.TB, opts ...rollout.RegistryOption) *rollout.Registry {
	t.Helper()
	reg, err := rollout.NewRegistry(opts...)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := rollout.New("checkout-v2", rollout.WithPercent(5))
	b, _ := rollout.New("search-v3")
	for _, g := range []*rollout.Gate{a, b} {
		if err := reg.Register(g); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.Retire("power-peg", "SMARS code removed 2003; never reuse"); err != nil {
		t.Fatal(err)
	}
	return reg
}

func status(t testing.TB, reg *rollout.Registry, name string) rollout.Status {
	t.Helper()
	g, ok := reg.Gate(name)
	if !ok {
		t.Fatalf("gate %q not registered", name)
	}
	return g.Status()
}

func TestRegister(t *testing.T) {
	reg := newTestRegistry(t)
	dup, _ := rollout.New("checkout-v2")
	if err := reg.Register(dup); !errors.Is(err, rollout.ErrDuplicate) {
		t.Errorf("duplicate Register = %v, want ErrDuplicate", err)
	}
	peg, _ := rollout.New("power-peg")
	if err := reg.Register(peg); !errors.Is(err, rollout.ErrRetired) {
		t.Errorf("Register of a retired name = %v, want ErrRetired", err)
	}
	if err := reg.Register(nil); !errors.Is(err, rollout.ErrInvalidConfig) {
		t.Errorf("Register(nil) = %v", err)
	}
	if err := reg.Retire("checkout-v2", "x"); !errors.Is(err, rollout.ErrInvalidConfig) {
		t.Errorf("Retire of a registered gate = %v", err)
	}
	if err := reg.Retire("bad name", "x"); !errors.Is(err, rollout.ErrInvalidConfig) {
		t.Errorf("Retire of an invalid name = %v", err)
	}
	var names []string
	for _, g := range reg.Gates() {
		names = append(names, g.Name())
	}
	if fmt.Sprint(names) != "[checkout-v2 search-v3]" {
		t.Errorf("Gates() = %v", names)
	}
	if _, ok := reg.Gate("power-peg"); ok {
		t.Error("a retired name is a gate")
	}
}

const goodConfig = `{
  "version": "2026-11-22.1",
  "gates": [
    {"name": "search-v3", "percent": 12.5},
    {"name": "checkout-v2", "percent": 1, "killed": true, "reason": "INC-7"}
  ]
}`

func TestLoadConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		doc   string
		want  error
		index int
		entry string
	}{
		{"unknown gate", `{"version":"2","gates":[{"name":"search-v3","percent":1},{"name":"nope","percent":1}]}`, rollout.ErrUnknownGate, 1, "nope"},
		{"retired gate", `{"version":"2","gates":[{"name":"power-peg","percent":100}]}`, rollout.ErrRetired, 0, "power-peg"},
		{"percent above 100", `{"version":"2","gates":[{"name":"search-v3","percent":100.5}]}`, rollout.ErrOutOfRange, 0, "search-v3"},
		{"negative percent", `{"version":"2","gates":[{"name":"search-v3","percent":-1}]}`, rollout.ErrOutOfRange, 0, "search-v3"},
		{"percent too fine", `{"version":"2","gates":[{"name":"search-v3","percent":0.00001}]}`, rollout.ErrOutOfRange, 0, "search-v3"},
		{"percent not a number", `{"version":"2","gates":[{"name":"search-v3","percent":"5"}]}`, rollout.ErrMalformed, 0, "search-v3"},
		{"unknown field", `{"version":"2","gates":[{"name":"search-v3","pecent":5}]}`, rollout.ErrMalformed, 0, "search-v3"},
		{"missing name", `{"version":"2","gates":[{"percent":5}]}`, rollout.ErrMalformed, 0, ""},
		{"duplicate entry", `{"version":"2","gates":[{"name":"search-v3"},{"name":"search-v3","killed":true}]}`, rollout.ErrDuplicate, 1, "search-v3"},
		{"reason too long", `{"version":"2","gates":[{"name":"search-v3","reason":"` + strings.Repeat("x", 1025) + `"}]}`, rollout.ErrMalformed, 0, "search-v3"},
		{"malformed JSON", `{"version":"2","gates":[`, rollout.ErrMalformed, -1, ""},
		{"not an object", `[1,2]`, rollout.ErrMalformed, -1, ""},
		{"null", `null`, rollout.ErrMalformed, -1, ""},
		{"empty", ``, rollout.ErrMalformed, -1, ""},
		{"missing version", `{"gates":[]}`, rollout.ErrMalformed, -1, ""},
		{"empty version", `{"version":"","gates":[]}`, rollout.ErrMalformed, -1, ""},
		{"unknown top-level field", `{"version":"2","gates":[],"extra":1}`, rollout.ErrMalformed, -1, ""},
		{"trailing data", `{"version":"2","gates":[]} {}`, rollout.ErrMalformed, -1, ""},
		{"too large", `{"version":"2","gates":[],"x":"` + strings.Repeat("x", rollout.MaxConfigBytes) + `"}`, rollout.ErrTooLarge, -1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			before, err := reg.LoadConfig(strings.NewReader(goodConfig))
			if err != nil {
				t.Fatal(err)
			}
			info, err := reg.LoadConfig(strings.NewReader(tc.doc))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ce *rollout.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err %T is not a *ConfigError", err)
			}
			if ce.Index != tc.index || ce.Entry != tc.entry {
				t.Errorf("ConfigError names gates[%d] %q, want gates[%d] %q", ce.Index, ce.Entry, tc.index, tc.entry)
			}
			if !strings.HasPrefix(err.Error(), "rollout: config rejected") {
				t.Errorf("message %q", err)
			}
			if tc.entry != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.entry)) {
				t.Errorf("message %q does not name entry %q", err, tc.entry)
			}
			if info != (rollout.ConfigInfo{}) {
				t.Errorf("a rejected load returned info %+v", info)
			}
			if got := reg.Config(); got != before {
				t.Errorf("config after rejection %+v, want %+v", got, before)
			}
			// The good config's effects stay.
			if st := status(t, reg, "search-v3"); st.Percent != 12.5 || st.Killed {
				t.Errorf("search-v3 after rejection: %+v", st)
			}
			if st := status(t, reg, "checkout-v2"); st.Percent != 1 || !st.Killed {
				t.Errorf("checkout-v2 after rejection: %+v", st)
			}
		})
	}
}

func TestLoadConfigReadError(t *testing.T) {
	reg := newTestRegistry(t)
	boom := errors.New("disk on fire")
	_, err := reg.LoadConfig(iotest.ErrReader(boom))
	var ce *rollout.ConfigError
	if !errors.Is(err, boom) || !errors.As(err, &ce) || ce.Index != -1 {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadConfigApplies(t *testing.T) {
	clk := fakeclock.New()
	reg := newTestRegistry(t, rollout.WithClock(clk.Now))
	info, err := reg.LoadConfig(strings.NewReader(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != "2026-11-22.1" || info.Gates != 2 || !info.Applied.Equal(clk.Now()) ||
		!strings.HasPrefix(info.Hash, "sha256:") || len(info.Hash) != len("sha256:")+64 {
		t.Fatalf("info %+v", info)
	}
	if reg.Config() != info {
		t.Fatalf("Config() = %+v, want %+v", reg.Config(), info)
	}
	st := status(t, reg, "checkout-v2")
	if !st.Killed || st.Reason != "INC-7" || st.KilledBy != rollout.KilledByConfig || st.Percent != 1 {
		t.Fatalf("checkout-v2: %+v", st)
	}
	if st := status(t, reg, "search-v3"); st.Percent != 12.5 || st.Killed {
		t.Fatalf("search-v3: %+v", st)
	}

	// An operator changes search-v3 through the API; a config that does not
	// change search-v3's entry leaves that alone.
	g, _ := reg.Gate("search-v3")
	_ = g.SetPercent(0)
	_, err = reg.LoadConfig(strings.NewReader(`{"version":"3","gates":[
		{"name":"search-v3","percent":12.5},
		{"name":"checkout-v2","percent":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if st := status(t, reg, "search-v3"); st.Percent != 0 {
		t.Errorf("an unchanged entry overrode the operator: %+v", st)
	}
	// killed turned false: the config's kill is lifted.
	if st := status(t, reg, "checkout-v2"); st.Killed || st.Percent != 1 {
		t.Errorf("checkout-v2 after killed turned false: %+v", st)
	}
	// A changed entry applies.
	_, err = reg.LoadConfig(strings.NewReader(`{"version":"4","gates":[
		{"name":"search-v3","percent":20},
		{"name":"checkout-v2","percent":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if st := status(t, reg, "search-v3"); st.Percent != 20 {
		t.Errorf("a changed entry did not apply: %+v", st)
	}
	// A config resume does not lift a kill by a call of Kill.
	c, _ := reg.Gate("checkout-v2")
	_, _ = reg.LoadConfig(strings.NewReader(`{"version":"5","gates":[{"name":"checkout-v2","killed":true}]}`))
	c.Resume()
	c.Kill("operator")
	_, _ = reg.LoadConfig(strings.NewReader(`{"version":"6","gates":[{"name":"checkout-v2","killed":false}]}`))
	if st := c.Status(); !st.Killed || st.Reason != "operator" {
		t.Errorf("config lifted a kill by Kill: %+v", st)
	}
	// An entry without percent leaves the percent; a removed entry changes nothing.
	if st := c.Status(); st.Percent != 1 {
		t.Errorf("percent changed by an entry without percent: %+v", st)
	}
}

func TestConfigHash(t *testing.T) {
	reg := newTestRegistry(t)
	a, _ := reg.LoadConfig(strings.NewReader(goodConfig))
	// Same meaning: order, spacing and number formatting differ.
	b, err := reg.LoadConfig(strings.NewReader(`{"gates":[{"reason":"INC-7","killed":true,"percent":1.0,"name":"checkout-v2"},{"name":"search-v3","percent":1.25e1}],"version":"2026-11-22.1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash != b.Hash {
		t.Fatalf("equivalent documents hash differently: %s %s", a.Hash, b.Hash)
	}
	for _, doc := range []string{
		strings.Replace(goodConfig, "12.5", "12.5001", 1),
		strings.Replace(goodConfig, "2026-11-22.1", "2026-11-22.2", 1),
		strings.Replace(goodConfig, "INC-7", "INC-8", 1),
		strings.Replace(goodConfig, `"killed": true, `, ``, 1),
	} {
		c, err := reg.LoadConfig(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash == a.Hash {
			t.Errorf("a different config has the same hash:\n%s", doc)
		}
	}
	// The hash is pinned: a fleet running mixed releases compares it, so
	// its canonical encoding must never change.
	const pinned = "sha256:1f0e083253302e0d008b4a85d909cde8f5d4257fa3b774b23c6f25430ffc6036"
	if a.Hash != pinned {
		t.Fatalf("hash of goodConfig = %s, want %s: the canonical encoding changed", a.Hash, pinned)
	}
}

// TestKnight is the I5 test: 8 registries (8 servers) load the same config
// and agree on every key; a config naming a retired or unknown gate is
// rejected on all of them and the previous config stays in force; the
// config hash is identical on all eight.
func TestKnight(t *testing.T) {
	const servers = 8
	regs := make([]*rollout.Registry, servers)
	for i := range regs {
		regs[i] = newTestRegistry(t)
	}
	doc := `{"version":"deploy-41","gates":[{"name":"checkout-v2","percent":5},{"name":"search-v3","percent":33.3333}]}`
	var hash string
	for i, reg := range regs {
		info, err := reg.LoadConfig(strings.NewReader(doc))
		if err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
		if i == 0 {
			hash = info.Hash
		} else if info.Hash != hash {
			t.Fatalf("server %d runs config %s, server 0 runs %s", i, info.Hash, hash)
		}
	}
	agree := func(label string) {
		t.Helper()
		for _, name := range []string{"checkout-v2", "search-v3"} {
			gates := make([]*rollout.Gate, servers)
			for i, reg := range regs {
				gates[i], _ = reg.Gate(name)
			}
			enabled := 0
			for k := range 10_000 {
				key := fmt.Sprint("account-", k)
				want := gates[0].Enabled(key)
				if want {
					enabled++
				}
				for i, g := range gates[1:] {
					if g.Enabled(key) != want {
						t.Fatalf("%s: %s: server %d disagrees with server 0 on %q", label, name, i+1, key)
					}
				}
			}
			t.Logf("%s: %s: all 8 servers agree on 10000 keys (%d enabled)", label, name, enabled)
		}
	}
	agree("deploy-41")

	for _, bad := range []struct {
		doc  string
		want error
		name string
	}{
		{`{"version":"deploy-42","gates":[{"name":"checkout-v2","percent":100},{"name":"power-peg","percent":100}]}`, rollout.ErrRetired, "power-peg"},
		{`{"version":"deploy-43","gates":[{"name":"checkout-v2","percent":100},{"name":"smars","percent":100}]}`, rollout.ErrUnknownGate, "smars"},
	} {
		for i, reg := range regs {
			_, err := reg.LoadConfig(strings.NewReader(bad.doc))
			var ce *rollout.ConfigError
			if !errors.Is(err, bad.want) || !errors.As(err, &ce) || ce.Entry != bad.name {
				t.Fatalf("server %d accepted or misreported %s: %v", i, bad.name, err)
			}
			if reg.Config().Hash != hash || reg.Config().Version != "deploy-41" {
				t.Fatalf("server %d: config after rejection %+v", i, reg.Config())
			}
			if st := status(t, reg, "checkout-v2"); st.Percent != 5 {
				t.Fatalf("server %d: checkout-v2 moved to %v by a rejected config", i, st.Percent)
			}
		}
	}
	agree("after rejections")
}

func TestConfigLoadsMetric(t *testing.T) {
	r := metrictest.New(t)
	reg := newTestRegistry(t, rollout.WithMeterProvider(r))
	for _, doc := range []string{goodConfig, goodConfig, `{`, `{"version":"x","gates":[{"name":"power-peg"}]}`, `{"version":"x","gates":[{"name":"x"}]}`} {
		_, _ = reg.LoadConfig(strings.NewReader(doc))
	}
	got := r.Sums("blastradius.rollout.config.loads")
	want := map[attribute.Set]int64{metrictest.Attrs("result", "applied"): 2, metrictest.Attrs("result", "rejected"): 3}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("config.loads = %v, want %v", got, want)
	}
}

// TestConfigKillsBeforeRaising: an entry that kills a gate and raises its
// percent kills first, so no call sees the new percent live.
func TestConfigKillsBeforeRaising(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	reg, _ := rollout.NewRegistry()
	g, _ := rollout.New("g", rollout.WithPercent(1), rollout.WithLogger(logger))
	_ = reg.Register(g)
	if _, err := reg.LoadConfig(strings.NewReader(`{"version":"1","gates":[{"name":"g","percent":100,"killed":true}]}`)); err != nil {
		t.Fatal(err)
	}
	log := buf.String()
	k, p := strings.Index(log, "gate killed"), strings.Index(log, "percent set")
	if k < 0 || p < 0 || k > p {
		t.Fatalf("kill must come before the new percent:\n%s", log)
	}
	if st := g.Status(); !st.Killed || st.Percent != 100 || st.KilledBy != rollout.KilledByConfig || st.Reason != "killed by config 1" {
		t.Fatalf("status %+v", st)
	}
	// Resume after lowering: the new percent is in place before the resume.
	buf.Reset()
	if _, err := reg.LoadConfig(strings.NewReader(`{"version":"2","gates":[{"name":"g","percent":2}]}`)); err != nil {
		t.Fatal(err)
	}
	log = buf.String()
	r, p := strings.Index(log, "gate resumed"), strings.Index(log, "percent set")
	if r < 0 || p < 0 || p > r {
		t.Fatalf("the new percent must come before the resume:\n%s", log)
	}
}

package rollout_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/rollout"
)

// recorder is an OnChange subscriber that records the names it is given
// and, like a real subscriber, reads the registry from within f (which
// would deadlock if a lock were held).
type recorder struct {
	mu    sync.Mutex
	names []string
}

func (c *recorder) subscribe(reg *rollout.Registry) func() {
	return reg.OnChange(func(name string) {
		if g, ok := reg.Gate(name); ok {
			_ = g.Status()
		}
		_ = reg.Config()
		c.mu.Lock()
		c.names = append(c.names, name)
		c.mu.Unlock()
	})
}

func (c *recorder) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.names
	c.names = nil
	return n
}

func TestOnChange(t *testing.T) {
	clk := fakeclock.New()
	reg := newTestRegistry(t, rollout.WithClock(clk.Now))
	var a, b recorder
	stopA := a.subscribe(reg)
	stopB := b.subscribe(reg)
	g, _ := reg.Gate("checkout-v2")
	ramp, err := rollout.New("ramp", rollout.WithClock(clk.Now),
		rollout.WithSchedule(rollout.Step{Percent: 1, Hold: time.Hour}, rollout.Step{Percent: 50}))
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name   string
		change func()
		want   []string
	}{
		{"register", func() { _ = reg.Register(ramp) }, []string{"ramp"}},
		{"kill", func() { g.Kill("INC-1") }, []string{"checkout-v2"}},
		{"kill of a killed gate", func() { g.Kill("again") }, nil},
		{"resume", func() { g.Resume() }, []string{"checkout-v2"}},
		{"resume of a live gate", func() { g.Resume() }, nil},
		{"percent", func() { _ = g.SetPercent(20) }, []string{"checkout-v2"}},
		{"bad percent", func() { _ = g.SetPercent(101) }, nil},
		{"schedule step", func() { clk.Advance(time.Hour); _ = ramp.Status() }, []string{"ramp"}},
		{"config", func() {
			_, _ = reg.LoadConfig(strings.NewReader(`{"version":"1","gates":[{"name":"search-v3","percent":3},{"name":"ramp","killed":true}]}`))
		}, []string{"search-v3", "ramp", ""}},
		{"same config again", func() {
			_, _ = reg.LoadConfig(strings.NewReader(`{"version":"1","gates":[{"name":"search-v3","percent":3},{"name":"ramp","killed":true}]}`))
		}, []string{""}},
		{"rejected config", func() { _, _ = reg.LoadConfig(strings.NewReader(`{"version":"2","gates":[{"name":"nope"}]}`)) }, nil},
		{"retire", func() { _ = reg.Retire("old-flag", "removed") }, []string{"old-flag"}},
		{"unregistered gate", func() { ramp2, _ := rollout.New("other"); ramp2.Kill("x") }, nil},
	}
	for _, s := range steps {
		s.change()
		if got := a.take(); !slices.Equal(got, s.want) {
			t.Errorf("%s: subscriber a got %q, want %q", s.name, got, s.want)
		}
		if got := b.take(); !slices.Equal(got, s.want) {
			t.Errorf("%s: subscriber b got %q, want %q", s.name, got, s.want)
		}
	}

	stopA()
	stopA() // idempotent
	g.Kill("INC-2")
	if got := a.take(); got != nil {
		t.Errorf("stopped subscriber got %q", got)
	}
	if got := b.take(); !slices.Equal(got, []string{"checkout-v2"}) {
		t.Errorf("remaining subscriber got %q", got)
	}
	stopB()
	if stop := reg.OnChange(nil); stop == nil {
		t.Fatal("OnChange(nil) returned a nil stop")
	}
}

// A guard's verdict is a change like any other.
func TestOnChangeGuardKill(t *testing.T) {
	reg, err := rollout.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	g, err := rollout.New("guarded", rollout.WithPercent(50), rollout.WithGuard())
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(g); err != nil {
		t.Fatal(err)
	}
	var c recorder
	defer c.subscribe(reg)()
	rollout.Record(g, rollout.VariantNew, rollout.OutcomePanic, false, 1)
	if st := g.Status(); !st.Killed || st.KilledBy != rollout.KilledByGuard {
		t.Fatalf("status %+v, want killed by the guard", st)
	}
	if got := c.take(); !slices.Equal(got, []string{"guarded"}) {
		t.Errorf("got %q, want the guard's kill", got)
	}
}

// KillBy, ResumeBy and SetPercentBy record their source in Status and
// History, and refuse a source outside the known set.
func TestChangeBySource(t *testing.T) {
	g, err := rollout.New("by", rollout.WithPercent(10))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.KillBy(rollout.KilledByFleet, "INC-9 via fleet"); err != nil {
		t.Fatal(err)
	}
	if st := g.Status(); !st.Killed || st.KilledBy != rollout.KilledByFleet || st.Reason != "INC-9 via fleet" {
		t.Fatalf("status %+v", st)
	}
	if err := g.SetPercentBy(rollout.KilledByFleet, 30); err != nil {
		t.Fatal(err)
	}
	if err := g.ResumeBy(rollout.KilledByFleet); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range g.History()[1:] {
		got = append(got, e.Kind+"/"+e.Source)
	}
	want := []string{"kill/fleet", "percent/fleet", "resume/fleet"}
	if !slices.Equal(got, want) {
		t.Errorf("history %q, want %q", got, want)
	}
	for _, src := range []string{"", rollout.KilledByConfig, rollout.SourceSchedule, "ops"} {
		if err := g.KillBy(src, "x"); !errors.Is(err, rollout.ErrInvalidConfig) {
			t.Errorf("KillBy(%q) = %v, want ErrInvalidConfig", src, err)
		}
		if err := g.ResumeBy(src); !errors.Is(err, rollout.ErrInvalidConfig) {
			t.Errorf("ResumeBy(%q) = %v", src, err)
		}
		if err := g.SetPercentBy(src, 1); !errors.Is(err, rollout.ErrInvalidConfig) {
			t.Errorf("SetPercentBy(%q) = %v", src, err)
		}
	}
	if st := g.Status(); st.Killed || st.Percent != 30 || len(g.History()) != 4 {
		t.Errorf("a refused source changed the gate: %+v", st)
	}
	// A config resumes only its own kills; a fleet's resume lifts any.
	g.Kill("local")
	if err := g.ResumeBy(rollout.KilledByFleet); err != nil || g.Status().Killed {
		t.Errorf("ResumeBy(fleet) of a call's kill: %v, %+v", err, g.Status())
	}
}

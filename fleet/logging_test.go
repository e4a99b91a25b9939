package fleet_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/internal/fakeclock"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/logbudget"
	"github.com/blastradius/blastradius/rollout"
)

const suppressedMetric = "blastradius.logbudget.suppressed"

// recorder is a slog.Handler that counts records by message.
type recorder struct {
	mu   sync.Mutex
	msgs map[string]int
}

func newRecorder() *recorder { return &recorder{msgs: map[string]int{}} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs[rec.Message]++
	return nil
}

func (r *recorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[msg]
}

// partitionedFor runs one instance whose store is partitioned from the
// start for d, so that it logs a failed read every retry (at most every
// 500ms).
func partitionedFor(t *testing.T, d time.Duration, opts ...fleet.Option) {
	t.Helper()
	f := newFaulty(fleet.NewMemoryStore())
	f.partition()
	n := newNode(t, f, "i0", gates, opts...)
	time.Sleep(d)
	n.stop()
}

// A logger without a budget gets one of the fleet's own, with logbudget's
// defaults (10 a minute per message and reason), and its suppressions are
// counted on the fleet's meter provider.
func TestLogsThroughOwnBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		m := metrictest.New(t)
		partitionedFor(t, 30*time.Second, fleet.WithLogger(slog.New(rec)), fleet.WithMeterProvider(m))
		if n := rec.count(fleet.MsgReadFailed); n != logbudget.DefaultLimit {
			t.Errorf("%d lines %q, want the budget's %d", n, fleet.MsgReadFailed, logbudget.DefaultLimit)
		}
		if n := m.Total(suppressedMetric); n == 0 {
			t.Errorf("%s = 0 on the fleet's meter provider, want the suppressed read failures", suppressedMetric)
		}
	})
}

// A logger whose handler is a *logbudget.Handler is the budget: the fleet
// logs through it (here a limit of 1000, so nothing is suppressed) and adds
// no budget of its own.
func TestLogsThroughSharedBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		shared := metrictest.New(t)
		own := metrictest.New(t)
		budget, err := logbudget.New(rec, logbudget.WithLimit(1000), logbudget.WithKeyAttr("reason"),
			logbudget.WithMeterProvider(shared))
		if err != nil {
			t.Fatal(err)
		}
		partitionedFor(t, 30*time.Second, fleet.WithLogger(slog.New(budget)), fleet.WithMeterProvider(own))
		if n := rec.count(fleet.MsgReadFailed); n <= logbudget.DefaultLimit {
			t.Errorf("%d lines %q in 30s of failed reads, want more than %d: a second budget suppressed them",
				n, fleet.MsgReadFailed, logbudget.DefaultLimit)
		}
		if n := shared.Total(suppressedMetric) + own.Total(suppressedMetric); n != 0 {
			t.Errorf("%s = %d, want 0", suppressedMetric, n)
		}
	})
}

// Nil means the default for the logger, meter provider and clock options:
// a nil clock after another one restores the real clock.
func TestNilOptionValuesMeanDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := fleet.NewMemoryStore()
		n := newNode(t, mem, "i0", gates,
			fleet.WithClock(fakeclock.New().Now), fleet.WithClock(nil), fleet.WithLogger(nil), fleet.WithMeterProvider(nil))
		synctest.Wait()
		start := time.Now()
		mustPub(t)(newPublisher(t, mem).Kill(t.Context(), "checkout-v2", "INC-1"))
		synctest.Wait()
		if !n.gate(t, "checkout-v2").Status().Killed {
			t.Fatal("kill not applied")
		}
		if got := n.s.Status().Sent; !got.Equal(start) {
			t.Errorf("heartbeat sent at %v, want the real clock's %v", got, start)
		}
	})
}

// A Guard's own log budget, over a logger without one, counts what it
// suppresses on the guard's meter provider: a store that flaps twelve
// times in half a minute logs ten of the twelve fallbacks (and ten of the
// twelve returns) and counts the other four.
func TestGuardLogsThroughOwnBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		m := metrictest.New(t)
		f := newFaulty(fleet.NewMemoryStore())
		gate, err := rollout.New(guarded, rollout.WithPercent(50))
		if err != nil {
			t.Fatal(err)
		}
		_, stop := runGuard(t, f, gate, &traffic{}, fleet.WithGuardInstanceID("i0"),
			fleet.WithGuardLogger(slog.New(rec)), fleet.WithGuardMeterProvider(m))
		time.Sleep(time.Second / 2) // between batches
		for range 12 {
			f.partition()
			time.Sleep(time.Second)
			f.heal()
			time.Sleep(time.Second)
		}
		stop()
		if n := rec.count(fleet.MsgGuardLocal); n != logbudget.DefaultLimit {
			t.Errorf("%d lines %q, want the budget's %d", n, fleet.MsgGuardLocal, logbudget.DefaultLimit)
		}
		if n := m.Total(suppressedMetric); n != 4 {
			t.Errorf("%s = %d on the guard's meter provider, want 4: two fallbacks and two returns", suppressedMetric, n)
		}
	})
}

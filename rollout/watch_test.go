package rollout_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

type reloads struct {
	mu    sync.Mutex
	errs  []error
	infos []rollout.ConfigInfo
}

func (r *reloads) add(info rollout.ConfigInfo, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.infos = append(r.infos, info)
	r.errs = append(r.errs, err)
}

func (r *reloads) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs)
}

func (r *reloads) last() (rollout.ConfigInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.infos[len(r.infos)-1], r.errs[len(r.errs)-1]
}

func TestWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollout.json")
	write := func(doc string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		reg := newTestRegistry(t)
		var seen reloads
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- reg.Watch(ctx, path, rollout.WithPollInterval(5*time.Second), rollout.WithOnReload(seen.add))
		}()

		// The file does not exist yet: one error, repeated polls stay quiet.
		synctest.Wait()
		if seen.count() != 1 {
			t.Fatalf("reloads = %d, want 1 error", seen.count())
		}
		if _, err := seen.last(); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("missing file: %v", err)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if seen.count() != 1 {
			t.Fatalf("the same error was reported %d times", seen.count())
		}

		write(goodConfig)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		info, err := seen.last()
		if err != nil || info.Version != "2026-11-22.1" || reg.Config() != info {
			t.Fatalf("load: %+v %v", info, err)
		}
		if st := status(t, reg, "search-v3"); st.Percent != 12.5 {
			t.Fatalf("search-v3 %+v", st)
		}

		// Unchanged content is not reloaded.
		n := seen.count()
		time.Sleep(time.Minute)
		synctest.Wait()
		if seen.count() != n {
			t.Fatalf("unchanged file reloaded %d times", seen.count()-n)
		}

		// A bad document is reported once, and the good config stays.
		write(`{"version":"bad","gates":[{"name":"power-peg","percent":100}]}`)
		time.Sleep(time.Minute)
		synctest.Wait()
		if seen.count() != n+1 {
			t.Fatalf("bad document reported %d times, want once", seen.count()-n)
		}
		if _, err := seen.last(); !errors.Is(err, rollout.ErrRetired) {
			t.Fatalf("bad document: %v", err)
		}
		if reg.Config() != info {
			t.Fatalf("config after a bad document: %+v", reg.Config())
		}

		write(`{"version":"fixed","gates":[{"name":"search-v3","percent":50}]}`)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if reg.Config().Version != "fixed" || status(t, reg, "search-v3").Percent != 50 {
			t.Fatalf("fixed document not applied: %+v", reg.Config())
		}

		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch returned %v", err)
		}
	})
}

// TestWatchDrivesSchedules: each poll evaluates every gate's schedule, so a
// promotion lags its due time by at most one poll interval.
func TestWatchDrivesSchedules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollout.json")
	if err := os.WriteFile(path, []byte(`{"version":"1","gates":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		reg, _ := rollout.NewRegistry()
		g, _ := rollout.New("ramp", rollout.WithSchedule(ramp...)) // time.Now is faked in the bubble
		if err := reg.Register(g); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = reg.Watch(ctx, path, rollout.WithPollInterval(10*time.Second)) }()
		synctest.Wait()
		time.Sleep(time.Hour - time.Second)
		synctest.Wait()
		// Read the state without Status (which would evaluate itself).
		if n := enabledCount(g); n != enabledAt(g.Name(), 1) {
			t.Fatalf("promoted early: %d keys enabled", n)
		}
		time.Sleep(10 * time.Second) // the next poll after the hour
		synctest.Wait()
		if n := enabledCount(g); n != enabledAt(g.Name(), 5) {
			t.Fatalf("not promoted within one poll after the hold: %d keys enabled, want %d", n, enabledAt(g.Name(), 5))
		}
		// Promoted by the poll at exactly start+1h: the next hold ends 2h later.
		if st := g.Status(); st.Step != 1 || !st.NextStepAt.Equal(start.Add(3*time.Hour)) {
			t.Fatalf("status %+v, want step 1 with the next step at %v", st, start.Add(3*time.Hour))
		}
		cancel()
	})
}

// enabledCount counts the keys among 2000 that g enables, using only
// Enabled (the sampled evaluation cannot promote again: time is frozen).
func enabledCount(g *rollout.Gate) int {
	n := 0
	for i := range 2000 {
		if g.Enabled("user-" + itoa(i)) {
			n++
		}
	}
	return n
}

func enabledAt(salt string, percent float64) int {
	n := 0
	for i := range 2000 {
		if float64(rollout.Bucket(salt, "user-"+itoa(i))) < percent*1e4 {
			n++
		}
	}
	return n
}

func itoa(i int) string {
	var b [20]byte
	p := len(b)
	for {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[p:])
		}
	}
}

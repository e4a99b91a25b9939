package rollout_test

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"testing/synctest"

	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"

	"github.com/blastradius/blastradius/internal/spantest"
	"github.com/blastradius/blastradius/rollout"
)

// event is one span event: its name and attributes.
type event struct {
	name  string
	attrs map[string]any
}

// events returns the events of the ended span named name.
func events(rec *spantest.Recorder, name string) []event {
	var evs []event
	for _, e := range rec.Span(name).Events() {
		evs = append(evs, event{e.Name, spantest.Attrs(e.Attributes)})
	}
	return evs
}

// evaluation is the attribute map of a feature_flag.evaluation event of the
// gate "lookup-v2".
func evaluation(variant, reason, mode, outcome string) event {
	return event{"feature_flag.evaluation", map[string]any{
		string(semconv.FeatureFlagKeyKey):           "lookup-v2",
		string(semconv.FeatureFlagProviderNameKey):  "blastradius",
		string(semconv.FeatureFlagResultVariantKey): variant,
		string(semconv.FeatureFlagResultReasonKey):  reason,
		"mode":    mode,
		"outcome": outcome,
	}}
}

func keyOnly(name string, kv ...any) event {
	m := map[string]any{"feature_flag.key": "lookup-v2"}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return event{name, m}
}

var errArm = errors.New("arm failed")

func failArm(context.Context, string) (int, error)  { return 0, errArm }
func otherArm(context.Context, string) (int, error) { return 7, nil }

// keyFor returns a benchmark key that g enables (on) or not.
func keyFor(t *testing.T, g *rollout.Gate, on bool) string {
	t.Helper()
	for _, k := range benchKeys {
		if g.Enabled(k) == on {
			return k
		}
	}
	t.Fatalf("no key with Enabled = %v", on)
	return ""
}

func newGate(t *testing.T, pct float64) *rollout.Gate {
	t.Helper()
	g, err := rollout.New("lookup-v2", rollout.WithPercent(pct), rollout.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestRunTrace(t *testing.T) {
	plain := rollout.Arms[string, int]{Old: intArm, New: intArm}
	tests := []struct {
		name string
		pct  float64
		kill bool
		on   bool // the key's decision
		arms rollout.Arms[string, int]
		want []event
	}{
		{"100%", 100, false, true, plain, []event{evaluation("new", "static", "run", "ok")}},
		{"0%", 0, false, false, plain, []event{evaluation("old", "static", "run", "ok")}},
		{"split, enabled", 50, false, true, plain, []event{evaluation("new", "split", "run", "ok")}},
		{"split, not enabled", 50, false, false, plain, []event{evaluation("old", "split", "run", "ok")}},
		{"killed", 100, true, false, plain, []event{evaluation("old", "disabled", "run", "ok")}},
		{"new fails", 100, false, true, rollout.Arms[string, int]{Old: intArm, New: failArm},
			[]event{evaluation("new", "static", "run", "error")}},
		{"new panics, fallback", 100, false, true,
			rollout.Arms[string, int]{Old: intArm, New: func(context.Context, string) (int, error) { panic("bug") }, Fallback: true},
			[]event{evaluation("new", "static", "run", "panic"), keyOnly("blastradius.rollout.fallback", "outcome", "ok")}},
		{"old fails", 0, false, false, rollout.Arms[string, int]{Old: failArm, New: intArm},
			[]event{evaluation("old", "static", "run", "error")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate(t, tt.pct)
			key := keyFor(t, g, tt.on || tt.kill)
			if tt.kill {
				g.Kill("INC-1")
			}
			p := path(t, g, tt.arms)
			rec := spantest.New(t)
			ctx, span := rec.Start(context.Background(), "call")
			_, _ = p.Run(ctx, key, key)
			span.End()
			if got := events(rec, "call"); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("events\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestShadowTrace(t *testing.T) {
	tests := []struct {
		name string
		pct  float64
		arms rollout.Arms[string, int]
		want []event
	}{
		{"not enabled", 0, rollout.Arms[string, int]{Old: intArm, New: otherArm},
			[]event{evaluation("old", "static", "shadow", "ok")}},
		{"equal", 100, rollout.Arms[string, int]{Old: intArm, New: intArm},
			[]event{evaluation("new", "static", "shadow", "ok"), keyOnly("blastradius.rollout.shadow", "outcome", "ok")}},
		{"mismatch", 100, rollout.Arms[string, int]{Old: intArm, New: otherArm}, []event{
			evaluation("new", "static", "shadow", "ok"),
			keyOnly("blastradius.rollout.shadow", "outcome", "ok"),
			keyOnly("blastradius.rollout.shadow.mismatch"),
		}},
		{"new fails", 100, rollout.Arms[string, int]{Old: intArm, New: failArm},
			[]event{evaluation("new", "static", "shadow", "ok"), keyOnly("blastradius.rollout.shadow", "outcome", "error")}},
		{"old fails", 100, rollout.Arms[string, int]{Old: failArm, New: intArm},
			[]event{evaluation("new", "static", "shadow", "error"), keyOnly("blastradius.rollout.shadow", "outcome", "ok")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := path(t, newGate(t, tt.pct), tt.arms)
			rec := spantest.New(t)
			ctx, span := rec.Start(context.Background(), "call")
			_, _ = p.Shadow(ctx, "user-1", "user-1")
			span.End()
			if got := events(rec, "call"); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("events\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

// TestShadowAsyncTrace: an asynchronous New records on the caller's span
// while it is recording, and nothing once it has ended; a call over the
// cap records the skip.
func TestShadowAsyncTrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		slow := func(context.Context, string) (int, error) { <-release; return 42, nil }
		p := path(t, newGate(t, 100), rollout.Arms[string, int]{Old: intArm, New: slow, Async: true, MaxConcurrent: 1})
		rec := spantest.New(t)

		ctx, first := rec.Start(context.Background(), "first")
		_, _ = p.Shadow(ctx, "user-1", "user-1")
		synctest.Wait() // New holds the only slot
		ctx, second := rec.Start(context.Background(), "second")
		_, _ = p.Shadow(ctx, "user-1", "user-1")
		second.End()
		release <- struct{}{}
		synctest.Wait() // the first New returned and released its slot
		ctx, ended := rec.Start(context.Background(), "ended")
		_, _ = p.Shadow(ctx, "user-1", "user-1")
		ended.End() // before its New returns
		release <- struct{}{}
		synctest.Wait()
		first.End()

		eval := evaluation("new", "static", "shadow", "ok")
		for _, c := range []struct {
			span string
			want []event
		}{
			{"first", []event{eval, keyOnly("blastradius.rollout.shadow", "outcome", "ok")}},
			{"second", []event{eval, keyOnly("blastradius.rollout.shadow.skipped")}},
			{"ended", []event{eval}},
		} {
			if got := events(rec, c.span); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: events\n%v\nwant\n%v", c.span, got, c.want)
			}
		}
	})
}

// TestNotRecordingAllocatesNothing: under a sampled-out span, Run and a
// Shadow the gate does not enable allocate nothing, as without a span
// (TestRunDoesNotAllocate, TestShadowNotGatedDoesNotAllocate).
func TestNotRecordingAllocatesNothing(t *testing.T) {
	ctx := spantest.NotRecording(context.Background())
	g, err := rollout.New("lookup-v2", rollout.WithPercent(12.5), rollout.WithGuard())
	if err != nil {
		t.Fatal(err)
	}
	p := path(t, g, rollout.Arms[string, int]{Old: intArm, New: intArm, Validate: intValid, Fallback: true})
	off := path(t, newGate(t, 0), rollout.Arms[string, int]{Old: intArm, New: intArm})
	i := 0
	if n := testing.AllocsPerRun(2000, func() {
		_, _ = p.Run(ctx, benchKeys[i&1023], benchKeys[i&1023])
		_, _ = off.Shadow(ctx, benchKeys[i&1023], benchKeys[i&1023])
		i++
	}); n != 0 {
		t.Errorf("%v allocs per run, want 0", n)
	}
}

// BenchmarkTrace prices the trace recording of Run and Shadow: each case
// untraced, under a sampled-out span and under a recording one,
// interleaved (see spantest.Bench), with the ratios to untraced.
func BenchmarkTrace(b *testing.B) {
	gate := func(pct float64) *rollout.Gate {
		g, err := rollout.New("lookup-v2", rollout.WithPercent(pct))
		if err != nil {
			b.Fatal(err)
		}
		return g
	}
	arms := rollout.Arms[string, int]{Old: intArm, New: intArm}
	runNew, runMixed := path(b, gate(100), arms), path(b, gate(12.5), arms)
	shadowOff := path(b, gate(0), arms)
	for _, c := range []struct {
		name string
		op   func(ctx context.Context, key string)
	}{
		{"Run/new", func(ctx context.Context, k string) { _, _ = runNew.Run(ctx, k, k) }},
		{"Run/mixed-12.5pct", func(ctx context.Context, k string) { _, _ = runMixed.Run(ctx, k, k) }},
		{"Shadow/not-enabled", func(ctx context.Context, k string) { _, _ = shadowOff.Shadow(ctx, k, k) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			i := 0
			spantest.Bench(b, func(ctx context.Context) func() {
				return func() { c.op(ctx, benchKeys[i&1023]); i++ }
			})
		})
	}
}

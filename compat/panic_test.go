package compat_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/compat"
	"github.com/blastradius/blastradius/internal/logtest"
	"github.com/blastradius/blastradius/internal/metrictest"
	"github.com/blastradius/blastradius/logbudget"
)

// panicVersions returns three versions: one whose Match panics, one whose
// Decode panics with a runtime error on input starting with "1", and a
// fallback that decodes digits.
func panicVersions() []compat.Version[int] {
	return []compat.Version[int]{
		{Name: "bad-match", Match: func([]byte) bool { panic("match boom") }, Decode: digits},
		{Name: "bad-decode", Match: compat.Prefix("1"), Decode: func(b []byte) (int, error) {
			var none []int
			return none[len(b)], nil // index out of range
		}},
		{Name: "digits", Decode: digits},
	}
}

// TestDecodePanics checks that a panic in a version's Match or Decode is
// recovered into that attempt's *PanicError, that a later version still
// decodes, and that each panic is counted and logged within the budget.
func TestDecodePanics(t *testing.T) {
	mp := metrictest.New(t)
	var out logtest.Buffer
	budget, err := logbudget.New(out.Handler(), logbudget.WithKeyAttr("reason"), logbudget.WithLimit(1))
	if err != nil {
		t.Fatal(err)
	}
	d, err := compat.New(panicVersions(), compat.WithName("p"), compat.WithMeterProvider(mp), compat.WithLogger(slog.New(budget)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// A later version still decodes, after a Match and a Decode panicked.
	n, res, err := d.Decode(ctx, []byte("123"))
	if err != nil || n != 123 || res != (compat.Result{Version: "digits", Fallback: true}) {
		t.Fatalf("Decode(123) = %d, %+v, %v", n, res, err)
	}
	if n, err := d.Verify(ctx, "17"); err != nil || n != 17 {
		t.Fatalf("Verify(17) = %d, %v", n, err)
	}

	// When no version decodes, the panics are typed attempts.
	_, res, err = d.Decode(ctx, []byte("1x"))
	if res != (compat.Result{}) || !errors.Is(err, compat.ErrUnrecognized) || !errors.Is(err, compat.ErrPanic) {
		t.Fatalf("Decode(1x) = %+v, %v; want ErrUnrecognized and ErrPanic", res, err)
	}
	var ce *compat.Error
	if !errors.As(err, &ce) || len(ce.Attempts) != 3 {
		t.Fatalf("err = %#v", err)
	}
	wantAttempts := []struct {
		version, fn string
		value       any
	}{{"bad-match", "Match", "match boom"}, {"bad-decode", "Decode", nil}}
	for i, w := range wantAttempts {
		a := ce.Attempts[i]
		var pe *compat.PanicError
		if a.Version != w.version || !errors.As(a.Err, &pe) || !errors.Is(a.Err, compat.ErrPanic) ||
			pe.Version != w.version || pe.Func != w.fn {
			t.Fatalf("attempt %d = %+v (%#v)", i, a, a.Err)
		}
		if w.value != nil && pe.Value != w.value {
			t.Errorf("attempt %d value = %v, want %v", i, pe.Value, w.value)
		}
	}
	var re runtime.Error
	if !errors.As(ce.Attempts[1].Err, &re) || re.Error() != "runtime error: index out of range [2] with length 0" {
		t.Errorf("the runtime error is not unwrapped: %v", ce.Attempts[1].Err)
	}
	if ce.Attempts[2] != (compat.Attempt{Version: "digits", Err: errNo}) {
		t.Errorf("attempt 2 = %+v", ce.Attempts[2])
	}
	const wantMsg = "compat: unrecognized (decoder p): bad-match: compat: Match panicked: match boom; " +
		"bad-decode: compat: Decode panicked: runtime error: index out of range [2] with length 0; digits: no"
	if err.Error() != wantMsg {
		t.Errorf("err = %q\nwant  %q", err, wantMsg)
	}

	// Every panic is counted per version, besides the call's own outcome.
	want := map[string]int64{
		"p|bad-match|panic":  3,
		"p|bad-decode|panic": 3,
		"p|digits|fallback":  2,
		"p||unrecognized":    1,
	}
	if got := decodes(t, mp); !reflect.DeepEqual(got, want) {
		t.Errorf("decodes = %v\nwant      %v", got, want)
	}
	st := d.Stats()
	if st.Versions[0].Panics != 3 || st.Versions[1].Panics != 3 || st.Versions[2].Fallback != 2 ||
		st.Versions[0].Total() != 0 || st.Unrecognized != 1 {
		t.Errorf("stats = %+v", st)
	}

	// Logged at Error with the stack, within the budget of each version
	// (one a minute here): one record per version, the rest suppressed.
	lines := out.Lines()
	if len(lines) != 2 {
		t.Fatalf("logs:\n%s", strings.Join(lines, "\n"))
	}
	for i, w := range []string{
		`level=ERROR msg="compat: version panicked" compat.decoder=p compat.version=bad-match reason=p/bad-match func=Match panic="match boom" stack="goroutine `,
		`level=ERROR msg="compat: version panicked" compat.decoder=p compat.version=bad-decode reason=p/bad-decode func=Decode panic="runtime error: index out of range [3] with length 0" stack="goroutine `,
	} {
		if !strings.HasPrefix(lines[i], w) || !strings.Contains(lines[i], "panicVersions") {
			t.Errorf("log %d = %q\nwant prefix %q and the panicking frame", i, lines[i], w)
		}
	}
}

// TestOwnLogBudget checks that a decoder given a logger without a budget
// logs through a budget of its own, with logbudget's defaults (10 records
// per key a minute), keyed by version, and counts what it suppressed on its
// meter provider.
func TestOwnLogBudget(t *testing.T) {
	mp := metrictest.New(t)
	var out logtest.Buffer
	d, err := compat.New(panicVersions(), compat.WithName("p"), compat.WithMeterProvider(mp),
		compat.WithLogger(slog.New(out.Handler())))
	if err != nil {
		t.Fatal(err)
	}
	for range 15 {
		if _, _, err := d.Decode(context.Background(), []byte("123")); err != nil {
			t.Fatal(err)
		}
	}
	count := map[string]int{}
	for _, l := range out.Lines() {
		_, reason, _ := strings.Cut(l, " reason=")
		reason, _, _ = strings.Cut(reason, " ")
		count[reason]++
	}
	if want := map[string]int{"p/bad-match": 10, "p/bad-decode": 10}; !reflect.DeepEqual(count, want) {
		t.Errorf("records per reason = %v, want %v", count, want)
	}
	if n := mp.Sum(logbudget.SuppressedMetric); n != 10 {
		t.Errorf("%s = %d, want 10", logbudget.SuppressedMetric, n)
	}
}

// TestDecodePanicsInOrder checks that attempts keep their order past the
// first few, however many versions panic, and that a panic outside the
// versions' funcs (here in the clock) is not swallowed.
func TestDecodePanicsInOrder(t *testing.T) {
	var vs []compat.Version[int]
	for i := range 6 {
		name := strconv.Itoa(i)
		vs = append(vs, compat.Version[int]{Name: name, Match: func([]byte) bool { panic(name) }, Decode: digits})
	}
	d, err := compat.New(append(vs, compat.Version[int]{Name: "digits", Decode: digits}), compat.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = d.Decode(context.Background(), []byte("x"))
	var ce *compat.Error
	if !errors.As(err, &ce) || len(ce.Attempts) != 7 {
		t.Fatalf("err = %v", err)
	}
	for i, a := range ce.Attempts[:6] {
		var pe *compat.PanicError
		if !errors.As(a.Err, &pe) || a.Version != strconv.Itoa(i) || pe.Value != a.Version {
			t.Errorf("attempt %d = %+v", i, a)
		}
	}
	if n, res, err := d.Decode(context.Background(), []byte("7")); n != 7 || !res.Fallback || err != nil {
		t.Errorf("Decode(7) = %d, %+v, %v", n, res, err)
	}

	clockPanics := func() time.Time { panic("clock") }
	d, err = compat.New([]compat.Version[int]{{Name: "v", Decode: digits, Sunset: t0}}, compat.WithClock(clockPanics))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != "clock" {
			t.Errorf("recovered %v, want the clock's panic", r)
		}
	}()
	_, _, _ = d.Decode(context.Background(), []byte("7"))
	t.Error("the clock's panic was swallowed")
}

// TestFloodAllocs pins what a flood of inputs that log costs once the log
// budget suppresses their records: a version past its sunset allocates
// nothing, and a panicking version only its *PanicError, because the
// record, and the panic's stack, are built only for records the budget
// passes.
func TestFloodAllocs(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	past, err := compat.New([]compat.Version[int]{{Name: "v", Decode: digits, Sunset: time.Now().Add(-time.Hour)}},
		compat.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	panics, err := compat.New([]compat.Version[int]{
		{Name: "bad", Match: func([]byte) bool { panic("boom") }, Decode: digits},
		{Name: "digits", Decode: digits},
	}, compat.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	ctx, in := context.Background(), []byte("12")
	for _, tt := range []struct {
		name string
		d    *compat.Decoder[int]
		want float64
	}{{"past sunset", past, 0}, {"panic", panics, 1}} {
		for range 20 { // spend the budget
			if _, _, err := tt.d.Decode(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		if got := testing.AllocsPerRun(1000, func() { _, _, _ = tt.d.Decode(ctx, in) }); got != tt.want {
			t.Errorf("%s: %v allocs/op, want %v", tt.name, got, tt.want)
		}
	}
}

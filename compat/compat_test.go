package compat_test

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/blastradius/blastradius/compat"
	"github.com/blastradius/blastradius/internal/metrictest"
)

func okDecode(b []byte) (int, error) { return len(b), nil }

// TestNewInvalidConfig checks that every invalid version or option fails
// New with an error wrapping ErrInvalidConfig that names it and its value.
func TestNewInvalidConfig(t *testing.T) {
	good := []compat.Version[int]{{Name: "v1", Decode: okDecode}}
	tests := []struct {
		name     string
		versions []compat.Version[int]
		opts     []compat.Option
		msg      string
	}{
		{"nil versions", nil, nil, "no versions"},
		{"empty versions", []compat.Version[int]{}, nil, "no versions"},
		{"empty name", []compat.Version[int]{{Decode: okDecode}}, nil, "versions[0]: empty Name"},
		{"duplicate names", []compat.Version[int]{{Name: "v1", Decode: okDecode}, {Name: "v1", Decode: okDecode}}, nil, `versions[1]: duplicate Name "v1"`},
		{"nil decode", []compat.Version[int]{{Name: "v1", Match: compat.Prefix("1")}}, nil, `versions[0] ("v1"): nil Decode`},
		{"empty decoder name", good, []compat.Option{compat.WithName("")}, `WithName(""): empty name`},
		{"zero max size", good, []compat.Option{compat.WithMaxSize(0)}, "WithMaxSize(0): must be positive"},
		{"negative max size", good, []compat.Option{compat.WithMaxSize(-1)}, "WithMaxSize(-1): must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := compat.New(tt.versions, tt.opts...)
			if d != nil || !errors.Is(err, compat.ErrInvalidConfig) {
				t.Fatalf("New = %v, %v; want ErrInvalidConfig", d, err)
			}
			if want := "compat: invalid config: " + tt.msg; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
		})
	}
}

// TestNilOptionsMeanDefaults checks that a nil Option is skipped and that a
// nil meter provider, logger or clock means the default.
func TestNilOptionsMeanDefaults(t *testing.T) {
	d, err := compat.New([]compat.Version[int]{{Name: "v1", Decode: digits, Sunset: time.Now().Add(time.Hour)}},
		nil, compat.WithMeterProvider(nil), compat.WithLogger(nil), compat.WithClock(nil))
	if err != nil {
		t.Fatal(err)
	}
	// The default clock is the real one: the sunset is an hour away, and
	// LastSeen is now.
	before := time.Now()
	if _, res, err := d.Decode(context.Background(), []byte("7")); err != nil || res.PastSunset {
		t.Fatalf("Decode = %+v, %v", res, err)
	}
	if seen := d.Stats().Versions[0].LastSeen; seen.Before(before) || seen.After(time.Now()) {
		t.Errorf("LastSeen = %v, want about %v", seen, before)
	}
}

var (
	errNo  = errors.New("no")
	errBig = errors.New("big")
)

// orderVersions returns versions whose Match claims input containing their
// name, and whose Decode succeeds on input containing "+name"; tried records
// the order of Decode calls.
func orderVersions(tried *[]string) []compat.Version[string] {
	var vs []compat.Version[string]
	for _, n := range []string{"m1", "f1", "m2", "f2", "m3", "f3"} {
		v := compat.Version[string]{Name: n, Decode: func(b []byte) (string, error) {
			*tried = append(*tried, n)
			if strings.Contains(string(b), "+"+n) {
				return n, nil
			}
			return "", errNo
		}}
		if n[0] == 'm' {
			v.Match = func(b []byte) bool { return strings.Contains(string(b), n) }
		}
		vs = append(vs, v)
	}
	return vs
}

func TestDecodeOrder(t *testing.T) {
	var tried []string
	mp := metrictest.New(t)
	d, err := compat.New(orderVersions(&tried), compat.WithName("order"), compat.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in    string
		tried []string
		res   compat.Result // Version "" means failure
	}{
		{"m1+m1", []string{"m1"}, compat.Result{Version: "m1"}},
		{"m2+m2", []string{"m2"}, compat.Result{Version: "m2"}},                          // m1 rejected: not a fallback
		{"m1 m2+m2", []string{"m1", "m2"}, compat.Result{Version: "m2", Fallback: true}}, // earlier candidate failed
		{"m3 m1+m3 +m1", []string{"m1"}, compat.Result{Version: "m1"}},                   // order given, not input order
		{"+f1", []string{"f1"}, compat.Result{Version: "f1", Fallback: true}},            // no Match: always a fallback
		{"+f2", []string{"f1", "f2"}, compat.Result{Version: "f2", Fallback: true}},
		{"m1+f1", []string{"m1", "f1"}, compat.Result{Version: "f1", Fallback: true}},
		{"m3+f1+m3", []string{"m3"}, compat.Result{Version: "m3"}}, // matchers before fallbacks
		{"x", []string{"f1", "f2", "f3"}, compat.Result{}},
		{"m1 m2 m3", []string{"m1", "m2", "m3", "f1", "f2", "f3"}, compat.Result{}}, // more attempts than the stack buffer
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tried = nil
			got, res, err := d.Decode(context.Background(), []byte(tt.in))
			if !reflect.DeepEqual(tried, tt.tried) {
				t.Errorf("tried %v, want %v", tried, tt.tried)
			}
			if res != tt.res {
				t.Errorf("result = %+v, want %+v", res, tt.res)
			}
			if tt.res.Version != "" {
				if err != nil || got != tt.res.Version {
					t.Errorf("Decode = %q, %v", got, err)
				}
				return
			}
			var ce *compat.Error
			if !errors.As(err, &ce) || !errors.Is(err, compat.ErrUnrecognized) || !errors.Is(err, errNo) {
				t.Fatalf("err = %v", err)
			}
			var names []string
			for _, a := range ce.Attempts {
				names = append(names, a.Version)
			}
			if !reflect.DeepEqual(names, tt.tried) {
				t.Errorf("attempts %v, want %v", names, tt.tried)
			}
		})
	}
	want := map[string]int64{
		"order|m1|ok": 2, "order|m2|ok": 1, "order|m2|fallback": 1, "order|m3|ok": 1,
		"order|f1|fallback": 2, "order|f2|fallback": 1, "order||unrecognized": 2,
	}
	if got := decodes(t, mp); !reflect.DeepEqual(got, want) {
		t.Errorf("decodes = %v\nwant      %v", got, want)
	}
}

func TestDecodeContext(t *testing.T) {
	var tried []string
	d, err := compat.New(orderVersions(&tried))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	// The first attempt runs even though ctx is done: decoding is CPU work.
	if got, _, err := d.Decode(ctx, []byte("+f1")); err != nil || got != "f1" {
		t.Errorf("first attempt: %q, %v", got, err)
	}
	// Between attempts, a done ctx stops the decode.
	tried = nil
	_, res, err := d.Decode(ctx, []byte("m1+f1"))
	var ce *compat.Error
	if !errors.As(err, &ce) || !errors.Is(err, context.Canceled) || !errors.Is(err, compat.ErrUnrecognized) {
		t.Fatalf("err = %v", err)
	}
	if !reflect.DeepEqual(tried, []string{"m1"}) || len(ce.Attempts) != 1 || ce.Cause != context.Canceled || res != (compat.Result{}) {
		t.Errorf("tried %v, attempts %+v, cause %v, result %+v", tried, ce.Attempts, ce.Cause, res)
	}
	if want := "compat: unrecognized (decoder string): m1: no; stopped: context canceled"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestDecodeMaxSize(t *testing.T) {
	calls := 0
	d, err := compat.New([]compat.Version[int]{{
		Name:   "v1",
		Match:  func([]byte) bool { calls++; return true },
		Decode: func(b []byte) (int, error) { calls++; return len(b), nil },
	}}, compat.WithMaxSize(8), compat.WithName("small"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := d.Decode(context.Background(), []byte("12345678")); err != nil || n != 8 || calls != 2 {
		t.Fatalf("at the cap: %d, %v, %d calls", n, err, calls)
	}
	calls = 0
	_, _, err = d.Decode(context.Background(), []byte("123456789"))
	if !errors.Is(err, compat.ErrTooLarge) || calls != 0 {
		t.Fatalf("over the cap: %v, %d calls", err, calls)
	}
	if want := "compat: too large: 9 bytes, limit 8 (decoder small)"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if st := d.Stats(); st.TooLarge != 1 || st.Versions[0].OK != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		err  *compat.Error
		want string
	}{
		{&compat.Error{Decoder: "d"}, "compat: unrecognized (decoder d): no version matched"},
		{&compat.Error{Decoder: "d", Attempts: []compat.Attempt{{Version: "v2", Err: errNo}, {Version: "v1", Err: errBig}}},
			"compat: unrecognized (decoder d): v2: no; v1: big"},
		{&compat.Error{Decoder: "d", Attempts: []compat.Attempt{{Version: "v1"}}}, "compat: unrecognized (decoder d): v1: <nil>"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, compat.ErrUnrecognized) || errors.Is(tt.err, compat.ErrTooLarge) {
			t.Errorf("%v: wrong sentinels", tt.err)
		}
	}
}

// digits is a Decode func that allocates nothing.
func digits(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errNo
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errNo
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// TestDecodeAllocs proves the hot path allocates nothing, with the global
// (no-op) meter provider and with a real SDK one; Verify allocates only the
// copy of the token it hands the versions.
func TestDecodeAllocs(t *testing.T) {
	mp := metrictest.New(t)
	for _, opts := range [][]compat.Option{nil, {compat.WithMeterProvider(mp)}} {
		d, err := compat.New([]compat.Version[int]{
			{Name: "nine", Match: compat.Prefix("9"), Decode: func([]byte) (int, error) { return 0, errNo }},
			{Name: "json", Match: compat.Prefix("{"), Decode: func([]byte) (int, error) { return 0, errNo }},
			{Name: "dec", Match: compat.Prefix("1"), Decode: digits, Sunset: t0.Add(100 * 365 * 24 * time.Hour)},
			{Name: "any", Decode: digits},
		}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, in := range []string{"123", "99", "42"} { // ok (with a sunset), fallback after a failure, fallback
			b := []byte(in)
			if _, _, err := d.Decode(ctx, b); err != nil {
				t.Fatalf("Decode(%q): %v", in, err)
			}
			if n := testing.AllocsPerRun(1000, func() { _, _, _ = d.Decode(ctx, b) }); n != 0 {
				t.Errorf("Decode(%q): %v allocs/op, want 0", in, n)
			}
			if n := testing.AllocsPerRun(1000, func() { _, _ = d.Verify(ctx, in) }); n != 1 {
				t.Errorf("Verify(%q): %v allocs/op, want 1 (the token's copy)", in, n)
			}
		}
	}
}

func TestDecodeConcurrent(t *testing.T) {
	mp := metrictest.New(t)
	d, err := compat.New([]compat.Version[int]{
		{Name: "even", Match: func(b []byte) bool { return (b[len(b)-1]-'0')%2 == 0 }, Decode: digits},
		{Name: "any", Decode: digits},
	}, compat.WithName("n"), compat.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				in := strconv.Itoa(g*1000 + i)
				if n, _, err := d.Decode(context.Background(), []byte(in)); err != nil || strconv.Itoa(n) != in {
					t.Errorf("Decode(%q) = %d, %v", in, n, err)
				}
			}
		})
	}
	wg.Wait()
	want := map[string]int64{"n|even|ok": 4000, "n|any|fallback": 4000}
	if got := decodes(t, mp); !reflect.DeepEqual(got, want) {
		t.Errorf("decodes = %v, want %v", got, want)
	}
	if st := d.Stats(); st.Versions[0].OK != 4000 || st.Versions[1].Fallback != 4000 {
		t.Errorf("stats = %+v", st)
	}
}

func TestThen(t *testing.T) {
	parse := func(b []byte) (int, error) { return strconv.Atoi(string(b)) }
	double := func(n int) (int, error) { return 2 * n, nil }
	positive := func(n int) (string, error) {
		if n <= 0 {
			return "", errNo
		}
		return strconv.Itoa(n), nil
	}
	f := compat.Then(compat.Then(parse, double), positive)
	tests := []struct {
		in, want string
		err      error
	}{
		{"21", "42", nil},
		{"-1", "", errNo},
		{"x", "", strconv.ErrSyntax},
	}
	for _, tt := range tests {
		got, err := f([]byte(tt.in))
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("f(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestDecodesInstrument checks the instrument behind blastradius.compat.decodes:
// a monotonic int64 counter in the compat scope, counted in {decode}.
func TestDecodesInstrument(t *testing.T) {
	mp := metrictest.New(t)
	d, err := compat.New([]compat.Version[int]{{Name: "v1", Decode: digits}}, compat.WithName("n"), compat.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = d.Decode(context.Background(), []byte("1"))
	var found bool
	for _, sm := range mp.Collect().ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != metricDecodes {
				continue
			}
			found = true
			sum, ok := m.Data.(metricdata.Sum[int64])
			if sm.Scope.Name != "github.com/blastradius/blastradius/compat" || m.Unit != "{decode}" || !ok || !sum.IsMonotonic {
				t.Errorf("scope %q, unit %q, data %T (monotonic %v)", sm.Scope.Name, m.Unit, m.Data, sum.IsMonotonic)
			}
		}
	}
	if !found {
		t.Fatalf("no %s", metricDecodes)
	}
}

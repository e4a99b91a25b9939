package openfeature_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"

	brof "github.com/blastradius/blastradius/openfeature"
	"github.com/blastradius/blastradius/rollout"
)

func TestNew(t *testing.T) {
	if _, err := brof.New(nil); !errors.Is(err, brof.ErrInvalidConfig) {
		t.Fatalf("New(nil) = %v, want ErrInvalidConfig", err)
	}
	if _, err := brof.New(newRegistry(t), nil, brof.WithFleet(nil)); err != nil {
		t.Fatalf("New with nil options: %v", err)
	}
}

// TestReasons evaluates each kind of gate through the SDK client: value,
// variant, reason, error code and metadata.
func TestReasons(t *testing.T) {
	reg := newRegistry(t)
	addGate(t, reg, "zero")
	addGate(t, reg, "full", rollout.WithPercent(100))
	split := addGate(t, reg, "split", rollout.WithPercent(30))
	addGate(t, reg, "killed", rollout.WithPercent(100)).Kill("INC-7: payment errors")
	addGate(t, reg, "killed-split", rollout.WithPercent(30)).Kill("INC-8")
	if err := reg.Retire("old-checkout", "replaced by checkout-v2"); err != nil {
		t.Fatal(err)
	}
	api, client := start(t, reg)
	defer shutdown(t, api)

	// A key that split enables and one it does not.
	var in, out string
	for i := 0; in == "" || out == ""; i++ {
		k := fmt.Sprintf("user-%d", i)
		if split.Enabled(k) {
			in = k
		} else {
			out = k
		}
	}

	tests := []struct {
		name, flag, key string
		def             bool
		want            bool
		variant         string
		reason          openfeature.Reason
		code            openfeature.ErrorCode
		metadata        openfeature.FlagMetadata // nil: none
	}{
		{name: "0%", flag: "zero", key: "user-1", def: true, want: false, variant: "off", reason: openfeature.StaticReason,
			metadata: openfeature.FlagMetadata{"percent": 0.0, "killed": false}},
		{name: "0% without key", flag: "zero", def: true, want: false, variant: "off", reason: openfeature.StaticReason,
			metadata: openfeature.FlagMetadata{"percent": 0.0, "killed": false}},
		{name: "100%", flag: "full", key: "user-1", want: true, variant: "on", reason: openfeature.StaticReason,
			metadata: openfeature.FlagMetadata{"percent": 100.0, "killed": false}},
		{name: "100% without key", flag: "full", want: true, variant: "on", reason: openfeature.StaticReason,
			metadata: openfeature.FlagMetadata{"percent": 100.0, "killed": false}},
		{name: "split, key in", flag: "split", key: in, want: true, variant: "on", reason: openfeature.SplitReason,
			metadata: openfeature.FlagMetadata{"percent": 30.0, "killed": false}},
		{name: "split, key out", flag: "split", key: out, def: true, want: false, variant: "off", reason: openfeature.SplitReason,
			metadata: openfeature.FlagMetadata{"percent": 30.0, "killed": false}},
		{name: "split without key", flag: "split", def: true, want: true, reason: openfeature.ErrorReason,
			code: openfeature.TargetingKeyMissingCode, metadata: openfeature.FlagMetadata{"percent": 30.0, "killed": false}},
		{name: "killed", flag: "killed", key: "user-1", def: true, want: false, variant: "off", reason: openfeature.DisabledReason,
			metadata: openfeature.FlagMetadata{"percent": 100.0, "killed": true, "killReason": "INC-7: payment errors"}},
		{name: "killed split without key", flag: "killed-split", def: true, want: false, variant: "off", reason: openfeature.DisabledReason,
			metadata: openfeature.FlagMetadata{"percent": 30.0, "killed": true, "killReason": "INC-8"}},
		{name: "unknown", flag: "nope", key: "user-1", def: true, want: true, reason: openfeature.ErrorReason,
			code: openfeature.FlagNotFoundCode},
		{name: "retired", flag: "old-checkout", key: "user-1", want: false, reason: openfeature.ErrorReason,
			code: openfeature.FlagNotFoundCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := client.BooleanValueDetails(context.Background(), tt.flag, tt.def, openfeature.NewEvaluationContext(tt.key, nil))
			if (err != nil) != (tt.code != "") {
				t.Errorf("err = %v, want an error: %v", err, tt.code != "")
			}
			if d.Value != tt.want || d.Variant != tt.variant || d.Reason != tt.reason || d.ErrorCode != tt.code {
				t.Errorf("got value %v variant %q reason %s code %q (%s), want %v %q %s %q",
					d.Value, d.Variant, d.Reason, d.ErrorCode, d.ErrorMessage, tt.want, tt.variant, tt.reason, tt.code)
			}
			if tt.code != "" && !strings.HasPrefix(d.ErrorMessage, "openfeature: ") {
				t.Errorf("error message %q lacks the package prefix", d.ErrorMessage)
			}
			if fmt.Sprint(d.FlagMetadata) != fmt.Sprint(map[string]any(tt.metadata)) {
				t.Errorf("metadata = %v, want %v", d.FlagMetadata, tt.metadata)
			}
		})
	}
}

// TestMetadataVersion: the version of the applied config is in every
// evaluation's metadata.
func TestMetadataVersion(t *testing.T) {
	reg := newRegistry(t)
	addGate(t, reg, "checkout-v2")
	if _, err := reg.LoadConfig(strings.NewReader(`{"version":"2026-11-30.1","gates":[{"name":"checkout-v2","percent":100}]}`)); err != nil {
		t.Fatal(err)
	}
	api, client := start(t, reg)
	defer shutdown(t, api)
	d, err := client.BooleanValueDetails(context.Background(), "checkout-v2", false, openfeature.NewEvaluationContext("u", nil))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := d.FlagMetadata.GetString("version"); err != nil || v != "2026-11-30.1" || !d.Value {
		t.Errorf("value %v, version %q (%v), want true, 2026-11-30.1", d.Value, v, err)
	}
}

// TestMatchesEnabled: for 10⁴ keys at 30%, the SDK's answer is the gate's.
func TestMatchesEnabled(t *testing.T) {
	reg := newRegistry(t)
	g := addGate(t, reg, "checkout-v2", rollout.WithPercent(30))
	api, client := start(t, reg)
	defer shutdown(t, api)
	on := 0
	for i := range 10_000 {
		key := fmt.Sprintf("user-%d", i)
		d, err := client.BooleanValueDetails(context.Background(), "checkout-v2", false, openfeature.NewEvaluationContext(key, nil))
		if err != nil {
			t.Fatal(err)
		}
		if d.Value != g.Enabled(key) || d.Reason != openfeature.SplitReason {
			t.Fatalf("key %q: SDK says %v (%s), Enabled says %v", key, d.Value, d.Reason, g.Enabled(key))
		}
		if d.Value {
			on++
		}
	}
	// 30% of 10⁴ keys, within 4 standard deviations (46).
	if on < 2800 || on > 3200 {
		t.Errorf("%d of 10000 keys enabled at 30%%", on)
	}
}

// TestNotBoolean: every other type is a type mismatch that returns the
// default, and an unknown name is still not found.
func TestNotBoolean(t *testing.T) {
	reg := newRegistry(t)
	addGate(t, reg, "checkout-v2", rollout.WithPercent(100))
	api, client := start(t, reg)
	defer shutdown(t, api)
	ctx, ec := context.Background(), openfeature.NewEvaluationContext("user-1", nil)
	for _, flag := range []string{"checkout-v2", "nope"} {
		want := openfeature.TypeMismatchCode
		if flag == "nope" {
			want = openfeature.FlagNotFoundCode
		}
		s, _ := client.StringValueDetails(ctx, flag, "dflt", ec)
		f, _ := client.FloatValueDetails(ctx, flag, 1.5, ec)
		i, _ := client.IntValueDetails(ctx, flag, 7, ec)
		o, _ := client.ObjectValueDetails(ctx, flag, "obj", ec)
		for _, c := range []struct {
			typ    string
			value  any
			want   any
			reason openfeature.Reason
			code   openfeature.ErrorCode
		}{
			{"string", s.Value, "dflt", s.Reason, s.ErrorCode},
			{"float", f.Value, 1.5, f.Reason, f.ErrorCode},
			{"int", i.Value, int64(7), i.Reason, i.ErrorCode},
			{"object", o.Value, "obj", o.Reason, o.ErrorCode},
		} {
			if c.value != c.want || c.reason != openfeature.ErrorReason || c.code != want {
				t.Errorf("%s %s: value %v reason %s code %s, want %v ERROR %s", flag, c.typ, c.value, c.reason, c.code, c.want, want)
			}
		}
	}
}

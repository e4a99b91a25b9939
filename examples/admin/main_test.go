package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAdminExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"config 1 applied, sha256:",
		`config 2 rejected: rollout: config rejected: gates[0] "power-peg": retired gate name`,
		"still on config 1",
		"GET  /                          -> 403",
		"POST /checkout-v2/kill          -> 200",
		"POST /search-v3/percent         -> 200",
		"POST /smars/kill                -> 404",
		"POST /search-v3/percent         -> 400",
		"GET  /checkout-v2/kill          -> 405",
		`checkout-v2  percent=5    killed=true  reason="INC-42: payment errors"`,
		"search-v3    percent=75   killed=false",
		"blastradius.rollout.kills{feature_flag.key=checkout-v2,reason=call} 1",
		"blastradius.rollout.percent{feature_flag.key=checkout-v2} 0",
		"blastradius.rollout.percent{feature_flag.key=search-v3} 75",
		"blastradius.rollout.config.loads{result=rejected} 1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}

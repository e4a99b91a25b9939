package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClientExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, re := range []string{
		`flaky \(every 3rd is 503\): +12 calls: 12 ok,  0 failed,  0 rejected`,
		`outage \(every call 500\): +20 calls:  0 ok, +\d+ failed, +1\d rejected by the open breaker; +[1-9] reached the server`,
		`breaker "127\.0\.0\.1:\d+" is open`,
		`blastradius\.breaker\.calls\{breaker\.name=127\.0\.0\.1:\d+,outcome=rejected\} 1\d`,
		`blastradius\.breaker\.retries\{breaker\.name=[^,]+,result=attempted\} [1-9]`,
		`blastradius\.breaker\.state\{breaker\.name=[^}]+\} 2`,
		`blastradius\.breaker\.transitions\{breaker\.name=[^,]+,from=closed,to=open\} 1`,
	} {
		if !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("output does not match %s", re)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}

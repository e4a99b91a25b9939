package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAdminExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, ""); err != nil {
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
		"GET  page, no credentials   -> 401\n",
		"GET  page                   -> 200, X-Frame-Options: DENY",
		"POST kill from another site -> 403, X-Frame-Options: DENY",
		"blastradius.rollout.kills{feature_flag.key=checkout-v2,reason=call} 1",
		"blastradius.rollout.percent{feature_flag.key=checkout-v2} 0",
		"blastradius.rollout.percent{feature_flag.key=search-v3} 75",
		"blastradius.rollout.config.loads{result=rejected} 1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(got, "console: http") {
		t.Error("without -serve the demo offers the console")
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}

// TestServe runs the example as -serve does: it prints the console's URL,
// which serves the page to the operator's basic auth, until interrupted.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, pw, "127.0.0.1:0")
		pw.CloseWithError(err)
		done <- err
	}()
	var consoleURL string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "console: "); ok {
			consoleURL, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if !strings.HasPrefix(consoleURL, "http://127.0.0.1:") || !strings.HasSuffix(consoleURL, "/admin/console/") {
		t.Fatalf("console URL %q (scan: %v)", consoleURL, sc.Err())
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, consoleURL, nil)
	req.SetBasicAuth("operator", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`id="gate-checkout-v2"`)) {
		t.Errorf("console: %d\n%s", resp.StatusCode, body)
	}
	select {
	case err := <-done:
		t.Fatalf("run returned %v before the interrupt", err)
	default:
	}
	cancel() // the interrupt
	if err := <-done; err != nil {
		t.Errorf("run after the interrupt: %v", err)
	}
}

package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPrometheusExample starts the program in-process on loopback, waits for
// its own traffic, scrapes /metrics, parses the text exposition and checks
// the blastradius_ series, their labels and values; then kills the gate
// through the admin handler and checks the scrape again.
func TestPrometheusExample(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, ln, pw, io.Discard)
		pw.CloseWithError(err)
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	// Read the program's output up to the "serving" line: its traffic is
	// done then. Keep draining the rest.
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "serving ") {
		out.WriteString(sc.Text() + "\n")
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	go io.Copy(io.Discard, pr)
	got := out.String()
	for _, want := range []string{
		"GET /stock?item=apple    alice        -> 200 apple: 7 in stock",
		"GET /stock?item=apple    legacy:carol -> 200 apple: 7 in stock",
		"GET /stock?item=broken   alice        -> 200 broken: in stock (cached)",
		"GET /stock               alice        -> 500 Internal Server Error",
		"%%garbage    -> 429",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The burst ran until the rate limit refused one request; the others
	// reached Auth (malformed token) and the gate's new path, which found
	// the breaker open.
	burst := float64(strings.Count(got, "%%garbage") - 1)
	if burst < 1 {
		t.Fatalf("burst of %v admitted requests; output:\n%s", burst, got)
	}

	base := "http://" + ln.Addr().String()
	fams := scrape(t, base)
	for _, c := range []struct {
		name   string
		typ    dto.MetricType
		labels map[string]string
		want   float64
	}{
		{"blastradius_breaker_calls_total", dto.MetricType_COUNTER, map[string]string{"breaker_name": "inventory", "outcome": "success"}, 5},
		{"blastradius_breaker_calls_total", dto.MetricType_COUNTER, map[string]string{"breaker_name": "inventory", "outcome": "failure"}, 5},
		{"blastradius_breaker_calls_total", dto.MetricType_COUNTER, map[string]string{"breaker_name": "inventory", "outcome": "rejected"}, 1 + burst},
		{"blastradius_breaker_state", dto.MetricType_GAUGE, map[string]string{"breaker_name": "inventory"}, 2},
		{"blastradius_breaker_transitions_total", dto.MetricType_COUNTER, map[string]string{"breaker_name": "inventory", "from": "closed", "to": "open"}, 1},
		{"blastradius_edge_auth_results_total", dto.MetricType_COUNTER, map[string]string{"result": "ok"}, 10},
		{"blastradius_edge_auth_results_total", dto.MetricType_COUNTER, map[string]string{"result": "anonymous", "reason": "unsupported_version"}, 1},
		{"blastradius_edge_auth_results_total", dto.MetricType_COUNTER, map[string]string{"result": "anonymous", "reason": "missing"}, 1},
		{"blastradius_edge_auth_results_total", dto.MetricType_COUNTER, map[string]string{"result": "anonymous", "reason": "malformed"}, burst},
		{"blastradius_edge_panics_total", dto.MetricType_COUNTER, nil, 1},
		{"blastradius_edge_shed_total", dto.MetricType_COUNTER, map[string]string{"reason": "rate"}, 1},
		{"blastradius_edge_shed_inflight", dto.MetricType_GAUGE, nil, 0},
		{"blastradius_rollout_percent", dto.MetricType_GAUGE, map[string]string{"feature_flag_key": "stock-v2"}, 100},
		{"blastradius_rollout_calls_total", dto.MetricType_COUNTER, map[string]string{"feature_flag_key": "stock-v2", "feature_flag_result_variant": "new", "outcome": "ok"}, 5},
		{"blastradius_rollout_calls_total", dto.MetricType_COUNTER, map[string]string{"feature_flag_key": "stock-v2", "feature_flag_result_variant": "new", "outcome": "error"}, 6 + burst},
		{"blastradius_rollout_calls_total", dto.MetricType_COUNTER, map[string]string{"feature_flag_key": "stock-v2", "feature_flag_result_variant": "old", "outcome": "ok"}, 6 + burst},
	} {
		if v, ok := value(fams, c.name, c.typ, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if v, ok := value(fams, "blastradius_edge_shed_limit", dto.MetricType_GAUGE, nil); !ok || v < 1 {
		t.Errorf("blastradius_edge_shed_limit = %v (found %v), want >= 1", v, ok)
	}
	for _, name := range []string{"blastradius_edge_shed_latency_seconds", "blastradius_edge_shed_no_load_latency_seconds"} {
		if v, ok := value(fams, name, dto.MetricType_GAUGE, nil); !ok || v < 0 {
			t.Errorf("%s = %v (found %v), want a series >= 0", name, v, ok)
		}
	}
	if _, ok := fams["blastradius_rollout_kills_total"]; ok {
		t.Error("blastradius_rollout_kills_total before any kill")
	}

	// The kill switch, over the admin handler: the gate's percent drops to
	// 0 and the kill is counted with its source.
	if code := post(t, base+"/admin/rollout/stock-v2/kill", ""); code != http.StatusForbidden {
		t.Errorf("kill without the admin token: %d, want 403", code)
	}
	if code := post(t, base+"/admin/rollout/stock-v2/kill", adminToken); code != http.StatusOK {
		t.Fatalf("kill: %d, want 200", code)
	}
	fams = scrape(t, base)
	if v, ok := value(fams, "blastradius_rollout_percent", dto.MetricType_GAUGE, map[string]string{"feature_flag_key": "stock-v2"}); !ok || v != 0 {
		t.Errorf("blastradius_rollout_percent after the kill = %v (found %v), want 0", v, ok)
	}
	if v, ok := value(fams, "blastradius_rollout_kills_total", dto.MetricType_COUNTER, map[string]string{"feature_flag_key": "stock-v2", "reason": "call"}); !ok || v != 1 {
		t.Errorf("blastradius_rollout_kills_total{reason=call} = %v (found %v), want 1", v, ok)
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}

// scrape GETs base/metrics and parses the Prometheus text exposition.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the text exposition", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value returns the value of the one series of family name, of type typ,
// that carries every label in labels (and no other label beyond the
// otel_scope_* ones).
func value(fams map[string]*dto.MetricFamily, name string, typ dto.MetricType, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok || f.GetType() != typ {
		return 0, false
	}
	var found []float64
	for _, m := range f.GetMetric() {
		n := 0
		for _, l := range m.GetLabel() {
			if strings.HasPrefix(l.GetName(), "otel_scope_") {
				continue
			}
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				n = -1
				break
			}
			n++
		}
		if n != len(labels) {
			continue
		}
		switch typ {
		case dto.MetricType_COUNTER:
			found = append(found, m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			found = append(found, m.GetGauge().GetValue())
		}
	}
	if len(found) != 1 {
		return 0, false
	}
	return found[0], true
}

// post sends an empty POST to url, with the admin token if one is given,
// and returns the status code.
func post(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestItemReachesInventory: the item of GET /stock reaches the inventory
// service as it was asked for, whatever its characters.
func TestItemReachesInventory(t *testing.T) {
	var mu sync.Mutex
	var got []string
	inventory := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Query()["item"]...)
		mu.Unlock()
	}))
	defer inventory.Close()
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())
	api, _, err := newAPI(mp, slog.New(slog.DiscardHandler), inventory.URL)
	if err != nil {
		t.Fatal(err)
	}
	items := []string{"apple", "a&item=b", "pear#1", "x y+z"}
	for _, item := range items {
		req := httptest.NewRequest(http.MethodGet, "/stock?"+url.Values{"item": {item}}.Encode(), nil)
		req.Header.Set("Authorization", "Bearer alice")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("item %q: %d %s", item, rec.Code, rec.Body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, items) {
		t.Errorf("the inventory was asked for %q, want %q", got, items)
	}
}

package server

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSlotHandler: at most slots requests run at once, the others are served
// in arrival order, and SetFactor scales the slots at once, waiters
// included.
func TestSlotHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := New(Config{Handler: "slot", Slots: 2, Work: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var order []int
		var done []time.Duration
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
				mu.Lock()
				order = append(order, i)
				done = append(done, time.Since(start))
				mu.Unlock()
			})
			time.Sleep(time.Millisecond) // arrive in order
		}
		wg.Wait()
		want := []time.Duration{10, 11, 20, 21, 30, 31}
		for i, d := range done {
			if order[i] != i || d != want[i]*time.Millisecond {
				t.Fatalf("completions %v at %v; want 0..5 at %v ms", order, done, want)
			}
		}
		h.SetFactor(2) // 4 slots
		start = time.Now()
		for range 4 {
			wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) })
		}
		wg.Wait()
		if d := time.Since(start); d != 10*time.Millisecond {
			t.Errorf("4 requests on 4 slots took %v, want 10ms", d)
		}
	})
}

// TestCPUHandler: halving the capacity doubles the computation.
func TestCPUHandler(t *testing.T) {
	h, err := New(Config{Handler: "cpu", Work: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := h.(*cpuHandler)
	h.SetFactor(0.5)
	if got := c.iters.Load(); got != 2*c.base {
		t.Errorf("iterations at half capacity %d, want %d", got, 2*c.base)
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range []Config{{Handler: "slot", Slots: 0, Work: time.Millisecond}, {Handler: "cpu"}, {Handler: "io", Work: time.Millisecond}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v): no error", c)
		}
	}
}

// TestRun: the server prints its address, serves work, control and stats,
// and returns once its input closes.
func TestRun(t *testing.T) {
	h, err := New(Config{Handler: "slot", Slots: 1, Work: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- Run(h, nil, func() string { return "limit=3" }, inR, outW) }()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("first line %q", line)
	}
	client := &http.Client{}
	for path, want := range map[string]int{"/": 200, "/control?factor=0.5": 200, "/control?factor=x": 400, "/control?factor=0": 400, "/stats": 200} {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/stats" && string(body) != "limit=3" {
			t.Errorf("/stats: %q", body)
		}
	}
	client.CloseIdleConnections()
	inW.Close()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

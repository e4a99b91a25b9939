package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/blastradius/blastradius/console"
	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/internal/fleettest"
	"github.com/blastradius/blastradius/rollout"
)

const (
	token   = "Bearer s3cret-operator-token"
	hostile = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	reason  = "INC-42: payment errors on checkout"
)

// chromium finds the browser, or skips the test (fails it under CI=true).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no chromium on PATH; install: apt-get install -y chromium"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// service is an instance of a service that mounts the console beside the
// JSON admin API, in a fleet of three more instances on a memory store.
type service struct {
	reg, other *rollout.Registry
	url        string // the console's URL
}

func newRegistry(t *testing.T) *rollout.Registry {
	t.Helper()
	quiet := rollout.WithLogger(slog.New(slog.DiscardHandler))
	reg, err := rollout.NewRegistry(quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts []rollout.Option
	}{
		{"checkout-v2", []rollout.Option{rollout.WithPercent(5), rollout.WithOwner("payments"),
			rollout.WithExpiry(time.Now().Add(90 * 24 * time.Hour))}},
		{"search-v3", []rollout.Option{rollout.WithOwner("search"), rollout.WithGuard(), rollout.WithSchedule(
			rollout.Step{Percent: 10, Hold: time.Hour}, rollout.Step{Percent: 50, Hold: 2 * time.Hour}, rollout.Step{Percent: 100})}},
		{"legacy-ui", []rollout.Option{rollout.WithPercent(100), rollout.WithOwner("web"),
			rollout.WithExpiry(time.Now().Add(-20 * 24 * time.Hour))}},
	} {
		g, err := rollout.New(c.name, append(c.opts, quiet)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Register(g); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// startSyncer runs a Syncer of reg until the test ends.
func startSyncer(t *testing.T, store fleet.Store, id, build string, reg *rollout.Registry) (*fleet.Syncer, func()) {
	t.Helper()
	s, err := fleet.New(store, reg, fleet.WithInstanceID(id), fleet.WithHost("pod-"+id), fleet.WithBuild(build),
		fleet.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	stop := fleettest.Run(t, s)
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s not ready after 10s", id)
	}
	return s, stop
}

// startGuard runs a fleet Guard of checkout-v2 until the test ends.
func startGuard(t *testing.T, store *fleet.MemoryStore, reg *rollout.Registry, s *fleet.Syncer) {
	t.Helper()
	g, _ := reg.Gate("checkout-v2")
	guard, err := fleet.NewGuard(store, g, fleet.WithSyncer(s), fleet.WithBatchInterval(200*time.Millisecond),
		fleet.WithGuardLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	fleettest.Run(t, guard)
}

func startService(t *testing.T) *service {
	t.Helper()
	store := fleet.NewMemoryStore()
	pub, err := fleet.NewPublisher(store, fleet.WithActor("deploy@ci"))
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"version":"2026-11-30.1","gates":[{"name":"checkout-v2","percent":5},{"name":"search-v3"},{"name":"legacy-ui","percent":100}]}`
	if _, err := pub.PublishConfig(t.Context(), []byte(doc)); err != nil {
		t.Fatal(err)
	}
	svc := &service{reg: newRegistry(t), other: newRegistry(t)}
	self, _ := startSyncer(t, store, "i-0", "v1.4.2", svc.reg)
	other, _ := startSyncer(t, store, "i-1", "v1.4.2", svc.other)
	// checkout-v2 is judged by a fleet guard, search-v3 by its own.
	startGuard(t, store, svc.reg, self)
	startGuard(t, store, svc.other, other)
	_, stop := startSyncer(t, store, "i-2", "v1.4.2", newRegistry(t))
	stop() // its last heartbeat says stopped
	// An instance of an older build whose heartbeat expired.
	beat, _ := json.Marshal(fleet.Instance{ID: "i-3", Host: "pod-i-3", Build: "v1.3.9", Sent: time.Now().Add(-40 * time.Second)})
	if _, err := store.Heartbeat(t.Context(), "i-3", beat, 0); err != nil {
		t.Fatal(err)
	}
	traffic(t, svc.reg)
	waitHolder(t, store, "checkout-v2")

	authorize := func(r *http.Request) bool { return r.Header.Get("Authorization") == token }
	mux := http.NewServeMux()
	mux.Handle("/admin/rollout/", http.StripPrefix("/admin/rollout", rollout.Handler(svc.reg, authorize)))
	mux.Handle("/admin/console/", http.StripPrefix("/admin/console", console.Handler(svc.reg, authorize,
		console.WithFleet(store, self), console.WithTimeout(5*time.Second), console.WithLogger(slog.New(slog.DiscardHandler)))))
	srv := httptest.NewServer(mux) // on 127.0.0.1
	t.Cleanup(srv.Close)
	svc.url = srv.URL + "/admin/console/"
	return svc
}

// waitHolder waits, for at most 10 s, until a live instance heartbeats
// that it holds the lease of gate's fleet guard.
func waitHolder(t *testing.T, store fleet.Store, gate string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		v, err := fleet.List(t.Context(), store)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range v.Instances {
			for _, g := range m.Guards {
				if m.Live && g.Gate == gate && g.Holder {
					return
				}
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no instance holds the lease of %s's fleet guard after 10s", gate)
		}
	}
}

// traffic runs calls of search-v3 through a Path, so that its guard and
// exposure report have numbers: the new arm fails 1.5% of its calls, the
// old one 1%, not enough for the guard to kill.
func traffic(t *testing.T, reg *rollout.Registry) {
	t.Helper()
	g, _ := reg.Gate("search-v3")
	var n atomic.Int64
	fail := func(every int64) func(context.Context, int) (int, error) {
		return func(context.Context, int) (int, error) {
			if n.Add(1)%every == 0 {
				return 0, errors.New("search: backend timeout")
			}
			return 1, nil
		}
	}
	p, err := rollout.NewPath(g, rollout.Arms[int, int]{Old: fail(100), New: fail(67)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8000 {
		p.Run(context.Background(), fmt.Sprintf("user-%d", i), i)
	}
}

// attacker serves, on another origin, a page whose form posts a kill to
// the console.
func attacker(t *testing.T, consoleURL string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%sgates/search-v3/kill">
<input type="hidden" name="reason" value="forged"><input type="hidden" name="confirm" value="yes">
<button id="go" type="submit">win a prize</button></form>`, consoleURL)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	// localhost is another site than 127.0.0.1, where the console is.
	return "http://localhost:" + u.Port() + "/"
}

func TestConsoleInChromium(t *testing.T) {
	bin := chromium(t)
	svc := startService(t)
	evil := attacker(t, svc.url)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, bound to ctx
		t.Fatalf("start chromium: %v", err)
	}
	// The operator's credentials go with every request, as a browser's
	// cookie or basic auth would: also with the forged one.
	if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders,
		network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": token}}); err != nil {
		t.Fatal(err)
	}
	var alerts atomic.Int32
	dialogs := chromedp.Events(bctx, page.JavascriptDialogOpening)
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			alerts.Add(1)
			chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
	defer wg.Wait()
	defer bcancel()

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, c := context.WithTimeout(bctx, 20*time.Second)
		defer c()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, c := context.WithTimeout(bctx, 20*time.Second)
		defer c()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	want := func(sel, want string) {
		t.Helper()
		if got := text(sel); got != want {
			t.Errorf("%s: %q, want %q", sel, got, want)
		}
	}
	killFromPage := func(gate, why string) {
		t.Helper()
		card := "#gate-" + gate
		step("kill "+gate,
			chromedp.Navigate(svc.url),
			chromedp.WaitVisible(chromedp.CSS(card)),
			chromedp.SendKeys(chromedp.CSS(card+" input[name=reason]"), why),
			chromedp.Click(chromedp.CSS(card+" form.kill button")),
			chromedp.WaitVisible(chromedp.ID("confirm")))
		want("h1", "Confirm: kill "+gate)
		if g, _ := svc.reg.Gate(gate); g.Status().Killed {
			t.Fatalf("%s killed before the confirmation", gate)
		}
		step("confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS("h1.done")))
	}

	// The page, a kill with its reason, the confirmation, the result.
	step("load", chromedp.Navigate(svc.url), chromedp.WaitVisible(chromedp.CSS("#gate-checkout-v2")))
	want("#gate-checkout-v2 .state", "LIVE")
	killFromPage("checkout-v2", reason)
	want("h1.done", "checkout-v2 is killed ("+reason+")")
	save(t, bctx, "console-kill.png", chromedp.FullScreenshot(100))
	want(".acks dd", "2: i-0 i-1")
	for name, reg := range map[string]*rollout.Registry{"i-0": svc.reg, "i-1": svc.other} {
		g, _ := reg.Gate("checkout-v2")
		if st := g.Status(); !st.Killed || st.Reason != reason {
			t.Errorf("%s: checkout-v2 killed=%v reason %q", name, st.Killed, st.Reason)
		}
	}
	step("reload", chromedp.Navigate(svc.url), chromedp.WaitVisible(chromedp.CSS("#gate-checkout-v2")))
	want("#gate-checkout-v2 .state", "KILLED")
	want("#gate-checkout-v2 q.reason", reason)
	if got := text("#gate-checkout-v2 .fleet-guard"); !strings.HasPrefix(got, "judged by i-") {
		t.Errorf("fleet guard of checkout-v2: %q", got)
	}
	// The gate's page: its fleet history has the kill, by the console.
	step("gate page", chromedp.Click(chromedp.CSS("#gate-checkout-v2 h2 a")), chromedp.WaitVisible(chromedp.CSS("section.fleet-history")))
	if got := text("section.fleet-history tbody"); !strings.Contains(got, "kill\tfleet\tconsole@i-0 from 127.0.0.1:") {
		t.Errorf("fleet history lacks the console's kill:\n%s", got)
	}
	save(t, bctx, "console-gate.png", chromedp.FullScreenshot(100))

	// A hostile reason is text: no script, no image, no dialog.
	killFromPage("legacy-ui", hostile)
	step("reload", chromedp.Navigate(svc.url), chromedp.WaitVisible(chromedp.CSS("#gate-legacy-ui")))
	want("#gate-legacy-ui q.reason", hostile)
	if n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("script, img").length`)); err != nil || n != 0 {
		t.Errorf("%d script or img elements in the page (%v), want 0", n, err)
	}
	save(t, bctx, "console-escaping.png", chromedp.Screenshot(chromedp.CSS("#gate-legacy-ui")))

	// A form on another site posts a kill with the operator's credentials.
	step("attacker page", chromedp.Navigate(evil), chromedp.WaitVisible(chromedp.ID("go")))
	resp, err := chromedp.RunResponse(bctx, chromedp.Click(chromedp.ID("go")))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusForbidden {
		t.Errorf("cross-origin POST answered %d, want 403", resp.Status)
	}
	want("p.error", "console: cross-origin request refused")
	if g, _ := svc.reg.Gate("search-v3"); g.Status().Killed {
		t.Error("the cross-origin POST killed search-v3")
	}
	if n := alerts.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened, want 0", n)
	}

	// Resume legacy-ui, on every instance.
	step("resume legacy-ui",
		chromedp.Navigate(svc.url),
		chromedp.Click(chromedp.CSS("#gate-legacy-ui form.resume button")),
		chromedp.WaitVisible(chromedp.ID("confirm")))
	want("h1", "Confirm: resume legacy-ui")
	step("confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS("h1.done")))
	want("h1.done", "legacy-ui is live at 100%")
	for name, reg := range map[string]*rollout.Registry{"i-0": svc.reg, "i-1": svc.other} {
		if g, _ := reg.Gate("legacy-ui"); g.Status().Killed {
			t.Errorf("%s: legacy-ui still killed", name)
		}
	}

	// The screenshot of the README, then the page on a phone.
	step("reload", chromedp.Navigate(svc.url), chromedp.WaitVisible(chromedp.CSS("#fleet")))
	png := save(t, bctx, "console.png", chromedp.FullScreenshot(100))
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "console.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("wrote docs/console.png")
	}
	step("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(svc.url),
		chromedp.WaitVisible(chromedp.CSS("#fleet")))
	if w, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || w > 390 {
		t.Errorf("on a 390px phone the page is %dpx wide (%v): it scrolls sideways", w, err)
	}
	save(t, bctx, "console-phone.png", chromedp.FullScreenshot(100))
}

// save takes a screenshot into the test's artifact directory.
func save(t *testing.T, ctx context.Context, name string, shot chromedp.Action[[]byte]) []byte {
	t.Helper()
	sctx, c := context.WithTimeout(ctx, 20*time.Second)
	defer c()
	png, err := chromedp.Run(sctx, shot)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return png
}

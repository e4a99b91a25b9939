package console

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/logbudget"
	"github.com/blastradius/blastradius/rollout"
)

// DefaultTimeout bounds each fleet store call of a request, and the wait
// for the instances to apply an action.
const DefaultTimeout = 3 * time.Second

// ErrInvalidConfig is wrapped by the panic of Handler on a bad argument or
// option.
var ErrInvalidConfig = errors.New("console: invalid config")

const (
	// maxBody bounds the body of a POST.
	maxBody = 64 << 10
	// maxReason bounds a kill reason, as rollout's admin handler does.
	maxReason = 1024
)

// securityHeaders are set on every response.
var securityHeaders = [][2]string{
	{"Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
	{"X-Frame-Options", "DENY"},
	{"X-Content-Type-Options", "nosniff"},
	{"Cache-Control", "no-store"},
	{"Referrer-Policy", "no-referrer"},
}

//go:embed console.html style.css
var assets embed.FS

var (
	pages = template.Must(template.New("").ParseFS(assets, "console.html"))
	style = must(assets.ReadFile("style.css"))
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Option configures Handler.
type Option interface {
	apply(*config) error
}

type option func(*config) error

func (f option) apply(c *config) error { return f(c) }

type config struct {
	store   fleet.Store
	syncer  *fleet.Syncer
	timeout time.Duration
	logger  *slog.Logger
}

// WithFleet shows the fleet of store: every instance that heartbeats to
// it, and which of them applied an action. Actions are then published to
// the store as well as applied here. s is this instance's Syncer, whose
// status the page shows; it may be nil, in a console that runs outside
// the fleet. A nil store is an error.
func WithFleet(store fleet.Store, s *fleet.Syncer) Option {
	return option(func(c *config) error {
		if store == nil {
			return fmt.Errorf("%w: WithFleet: nil store", ErrInvalidConfig)
		}
		c.store, c.syncer = store, s
		return nil
	})
}

// WithTimeout bounds each fleet store call of a request, and the wait for
// the instances to apply an action. The default is DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return option(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithTimeout(%v): must be positive", ErrInvalidConfig, d)
		}
		c.timeout = d
		return nil
	})
}

// WithLogger sets the logger of the audit lines (one per action applied).
// The default is slog.Default(). A logger without a log budget is wrapped
// in one (logbudget.For).
func WithLogger(l *slog.Logger) Option {
	return option(func(c *config) error {
		c.logger = l
		return nil
	})
}

// Handler returns the console of reg. Every request must first pass
// authorize, or it is answered 403 Forbidden. Routes, relative to where the
// handler is mounted (use http.StripPrefix to mount it under a prefix,
// with a trailing slash: "/admin/console/"):
//
//	GET  /                      every gate and, with WithFleet, every instance
//	GET  /gates/{name}          one gate, its history and exposure report
//	POST /gates/{name}/kill     form: reason (required), confirm
//	POST /gates/{name}/resume   form: confirm
//	POST /gates/{name}/percent  form: percent, confirm
//	GET  /style.css             the page's style sheet
//
// A POST without confirm=yes changes nothing and answers with a
// confirmation page; with it, it applies the action and answers with the
// result. A POST from another origin is 403, an unknown gate 404, a bad
// form value 400, a body over 64 KiB 413.
//
// There is no unauthenticated mode: Handler panics, with an error wrapping
// ErrInvalidConfig that names the argument or option, if reg or authorize
// is nil or an option is invalid. A nil option is skipped.
func Handler(reg *rollout.Registry, authorize func(*http.Request) bool, opts ...Option) http.Handler {
	if reg == nil {
		panic(fmt.Errorf("%w: Handler: nil registry", ErrInvalidConfig))
	}
	if authorize == nil {
		panic(fmt.Errorf("%w: Handler: nil authorize func: there is no unauthenticated mode", ErrInvalidConfig))
	}
	cfg := config{timeout: DefaultTimeout, logger: slog.Default()}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			panic(err)
		}
	}
	budget, err := logbudget.For(cfg.logger)
	if err != nil {
		panic(fmt.Errorf("%w: WithLogger: %w", ErrInvalidConfig, err))
	}
	c := &console{reg: reg, cfg: cfg, log: slog.New(budget)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.index)
	mux.HandleFunc("GET /style.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Write(style)
	})
	mux.HandleFunc("GET /gates/{name}", c.gate)
	mux.HandleFunc("POST /gates/{name}/{action}", c.act)
	mux.HandleFunc("/gates/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		c.fail(w, r, http.StatusMethodNotAllowed, "console: an action is a POST")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "console: no such page")
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusForbidden, "console: cross-origin request refused")
	}))
	protected := cop.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range securityHeaders {
			h.Set(kv[0], kv[1])
		}
		if !authorize(r) {
			c.fail(w, r, http.StatusForbidden, "console: forbidden")
			return
		}
		protected.ServeHTTP(w, r)
	})
}

type console struct {
	reg *rollout.Registry
	cfg config
	log *slog.Logger
}

// root is the relative URL of the console's root from the page of r, so
// that links work wherever the handler is mounted.
func root(r *http.Request) string {
	if d := strings.Count(r.URL.EscapedPath(), "/") - 1; d > 0 {
		return strings.Repeat("../", d)
	}
	return "./"
}

func (c *console) newPage(r *http.Request, title string) *page {
	return &page{Title: title, Root: root(r), now: time.Now()}
}

func (c *console) index(w http.ResponseWriter, r *http.Request) {
	p := c.newPage(r, "Gates")
	p.Config = configText(c.reg.Config())
	fv := c.fleet(r.Context(), p)
	for _, g := range c.reg.Gates() {
		p.Gates = append(p.Gates, p.gateView(g, fv))
	}
	p.Fleet = fv
	c.render(w, http.StatusOK, "index", p)
}

func (c *console) gate(w http.ResponseWriter, r *http.Request) {
	g, ok := c.lookup(w, r)
	if !ok {
		return
	}
	p := c.newPage(r, g.Name())
	fv := c.fleet(r.Context(), p)
	gv := p.gateView(g, fv)
	p.Gate = &gv
	p.Detail = p.detail(g)
	if fv != nil && fv.Err == "" {
		p.Detail.Fleet = c.fleetDetail(r.Context(), p, g.Name())
	}
	c.render(w, http.StatusOK, "gate", p)
}

// fleetDetail reads the fleet history and exposure of gate name; nil if the
// store keeps no history.
func (c *console) fleetDetail(ctx context.Context, p *page, name string) *fleetDetail {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.timeout)
	defer cancel()
	h, err := fleet.ReadHistory(ctx, c.cfg.store, name)
	if errors.Is(err, fleet.ErrNoHistoryStore) {
		return nil
	}
	var rep fleet.Exposure
	if err == nil {
		rep, err = fleet.ReadExposure(ctx, c.cfg.store, name, time.Time{}, p.now)
	}
	if err != nil {
		return &fleetDetail{Err: err.Error()}
	}
	return p.fleetDetail(h, rep)
}

// lookup finds the gate named in the path, or answers 404.
func (c *console) lookup(w http.ResponseWriter, r *http.Request) (*rollout.Gate, bool) {
	name := r.PathValue("name")
	g, ok := c.reg.Gate(name)
	if !ok {
		c.fail(w, r, http.StatusNotFound, fmt.Sprintf("console: unknown gate %q", name))
	}
	return g, ok
}

// fleet reads the fleet view, if the console has a store; a failure is a
// banner and a fleetView with Err.
func (c *console) fleet(ctx context.Context, p *page) *fleetView {
	if c.cfg.store == nil {
		return nil
	}
	fv := &fleetView{}
	if s := c.cfg.syncer; s != nil {
		self := s.Status()
		fv.Self = &self
		if self.Stale {
			p.Banners = append(p.Banners, fmt.Sprintf("This instance (%s) has had no contact with the fleet store since %s: it serves its last good state.",
				self.ID, p.when(self.LastContact)))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.timeout)
	defer cancel()
	v, err := fleet.List(ctx, c.cfg.store)
	if err != nil {
		fv.Err = err.Error()
		p.Banners = append(p.Banners, "The fleet store cannot be read ("+fv.Err+"). The page shows this instance only; "+
			"kill, resume and percent still work on this instance.")
		return fv
	}
	fv.set(p, v)
	return fv
}

// act is a POST of an action: the confirmation page without confirm=yes,
// the action and its result with it.
func (c *console) act(w http.ResponseWriter, r *http.Request) {
	g, ok := c.lookup(w, r)
	if !ok {
		return
	}
	a := action{Name: r.PathValue("action"), Target: g.Name()}
	switch a.Name {
	case "kill", "resume", "percent":
	default:
		c.fail(w, r, http.StatusNotFound, fmt.Sprintf("console: unknown action %q", a.Name))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			c.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("console: body larger than %d bytes", maxBody))
		} else {
			c.fail(w, r, http.StatusBadRequest, "console: bad form: "+err.Error())
		}
		return
	}
	if err := a.parse(r); err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	p := c.newPage(r, "")
	if r.PostForm.Get("confirm") != "yes" {
		p.Title = "Confirm: " + a.Name + " " + a.Target
		p.Confirm = c.confirm(r.Context(), p, g, a)
		c.render(w, http.StatusOK, "confirm", p)
		return
	}
	p.Title = a.Name + " " + a.Target
	p.Result = c.apply(r, p, g, a)
	c.render(w, http.StatusOK, "result", p)
}

// action is a validated action on a gate.
type action struct {
	Name    string // kill, resume or percent
	Target  string
	Reason  string
	Percent float64
}

// parse reads and checks the action's form fields.
func (a *action) parse(r *http.Request) error {
	switch a.Name {
	case "kill":
		a.Reason = strings.TrimSpace(r.PostForm.Get("reason"))
		if a.Reason == "" {
			return errors.New("console: a kill needs a reason")
		}
		if len(a.Reason) > maxReason {
			return fmt.Errorf("console: reason longer than %d bytes", maxReason)
		}
	case "percent":
		s := strings.TrimSpace(r.PostForm.Get("percent"))
		p, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("console: percent %q is not a number", s)
		}
		if err := rollout.CheckPercent(p); err != nil {
			return fmt.Errorf("console: %w", err)
		}
		a.Percent = p
	}
	return nil
}

// PercentText is the percent as the confirmation form sends it again.
func (a action) PercentText() string { return strconv.FormatFloat(a.Percent, 'f', -1, 64) }

// What says what the action does.
func (a action) What() string {
	switch a.Name {
	case "kill":
		return "Kill " + a.Target + ": no key will be enabled until it is resumed."
	case "resume":
		return "Resume " + a.Target + ": keys are enabled at its percent again."
	default:
		return fmt.Sprintf("Set %s to %s%%: this stops its schedule.", a.Target, a.PercentText())
	}
}

type confirmView struct {
	action
	Gate  gateView
	Where string
}

func (c *console) confirm(ctx context.Context, p *page, g *rollout.Gate, a action) *confirmView {
	cv := &confirmView{action: a, Where: "on this instance"}
	fv := c.fleet(ctx, p)
	switch {
	case fv == nil:
	case fv.Err != "":
		cv.Where = "on this instance; publishing it to the fleet will be tried, but the store cannot be read now"
	default:
		cv.Where = fmt.Sprintf("on this instance and, through the fleet store, on every instance (%d live)", fv.Live)
	}
	cv.Gate = p.gateView(g, fv)
	return cv
}

type resultView struct {
	Done string
	Gate gateView
	// With a fleet: the publish, the instances' answers, or why not.
	Fleet     bool
	Version   uint64
	FleetErr  string
	Applied   []string
	Lagging   []string
	Refused   []string
	NoGate    []string
	Took      string
	Published bool
}

// apply applies a on this instance, then publishes it to the fleet and
// waits for the instances.
func (c *console) apply(r *http.Request, p *page, g *rollout.Gate, a action) *resultView {
	switch a.Name {
	case "kill":
		g.Kill(a.Reason)
	case "resume":
		g.Resume()
	case "percent":
		_ = g.SetPercent(a.Percent) // checked by parse
	}
	c.log.Info("console: "+a.Name, "gate", a.Target, "reason", a.Reason, "percent", a.Percent, "remote", r.RemoteAddr)
	res := &resultView{Fleet: c.cfg.store != nil}
	if res.Fleet {
		c.publish(r, res, a)
	}
	st := g.Status()
	switch {
	case st.Killed:
		res.Done = fmt.Sprintf("%s is killed (%s)", a.Target, st.Reason)
	default:
		res.Done = fmt.Sprintf("%s is live at %s%%", a.Target, strconv.FormatFloat(st.Percent, 'f', -1, 64))
	}
	res.Gate = p.gateView(g, c.fleet(r.Context(), p))
	return res
}

func (c *console) publish(r *http.Request, res *resultView, a action) {
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.timeout)
	defer cancel()
	actor := "console"
	if s := c.cfg.syncer; s != nil {
		actor += "@" + s.ID()
	}
	pub, err := fleet.NewPublisher(c.cfg.store, fleet.WithActor(actor+" from "+r.RemoteAddr))
	var published fleet.Published
	if err == nil {
		switch a.Name {
		case "kill":
			published, err = pub.Kill(ctx, a.Target, a.Reason)
		case "resume":
			published, err = pub.Resume(ctx, a.Target)
		case "percent":
			published, err = pub.SetPercent(ctx, a.Target, a.Percent)
		}
	}
	if published.Version > 0 {
		res.Published, res.Version = true, published.Version
	}
	if err != nil {
		res.FleetErr = err.Error()
		if !res.Published {
			return
		}
	}
	acks, err := pub.Wait(ctx, published)
	if err != nil {
		res.FleetErr = cmp.Or(res.FleetErr, err.Error())
	}
	ids := func(ms []fleet.Member) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = m.ID
		}
		return out
	}
	res.Applied, res.Lagging, res.Refused, res.NoGate = ids(acks.Applied), ids(acks.Lagging), ids(acks.Refused), ids(acks.NoGate)
	res.Took = acks.Took.Round(time.Millisecond).String()
}

// fail answers with the error page.
func (c *console) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	p := c.newPage(r, http.StatusText(code))
	p.Error = msg
	c.render(w, code, "error", p)
}

func (c *console) render(w http.ResponseWriter, code int, name string, p *page) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, p); err != nil {
		c.log.Error("console: render", "page", name, "error", err)
		http.Error(w, "console: cannot render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

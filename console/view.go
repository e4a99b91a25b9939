package console

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/rollout"
)

// page is what a template renders: everything is formatted here, so the
// templates only place and escape strings.
type page struct {
	Title   string
	Root    string // relative URL of the console's root
	Banners []string
	Error   string

	Config  string
	Gates   []gateView
	Fleet   *fleetView
	Gate    *gateView
	Detail  *detailView
	Confirm *confirmView
	Result  *resultView

	now time.Time
}

// Now is the time of the page.
func (p *page) Now() string { return p.now.UTC().Format("2006-01-02 15:04:05 UTC") }

// when formats t with its distance from the page's time; "" for the zero
// time.
func (p *page) when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	s := t.UTC().Format("2006-01-02 15:04:05 UTC")
	switch d := p.now.Sub(t); {
	case d >= time.Second:
		return s + " (" + human(d) + " ago)"
	case d <= -time.Second:
		return s + " (in " + human(-d) + ")"
	}
	return s + " (now)"
}

// human rounds d to its largest unit: 42s, 5m, 3h, 12d.
func human(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

func instances(n int) string {
	if n == 1 {
		return "1 instance"
	}
	return fmt.Sprintf("%d instances", n)
}

func pct(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) + "%" }

// short abbreviates a "sha256:…" hash or an epoch.
func short(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func configText(c rollout.ConfigInfo) string {
	if c.Hash == "" {
		return "no config applied"
	}
	return fmt.Sprintf("config %q %s, %d gates", c.Version, short(c.Hash, 19), c.Gates)
}

// gateView is a gate as the page shows it.
type gateView struct {
	rollout.Status
	Href     string // the gate's page
	Percent  string
	State    string // LIVE, OFF (live at 0%) or KILLED
	Schedule string
	KilledAt string
	Expiry   string
	Guard    *guardView
	// FleetGuard is the fleet Guard of the gate (package fleet), as the
	// instance that judges the fleet reports it, or this instance's while
	// it judges its own counts.
	FleetGuard *guardView
	// Differs are the live instances of the fleet whose state of the gate
	// differs from this instance's.
	Differs []string
}

type guardView struct {
	Scope    string // the fleet guard's: who judges what
	Old, New string
	Look     string
	Verdict  string
	Tripped  bool
}

func (p *page) gateView(g *rollout.Gate, fv *fleetView) gateView {
	st := g.Status()
	v := gateView{Status: st, Href: p.Root + "gates/" + st.Name, Percent: pct(st.Percent),
		KilledAt: p.when(st.KilledAt)}
	switch {
	case st.Killed:
		v.State = "KILLED"
	case st.Percent == 0:
		v.State = "OFF"
	default:
		v.State = "LIVE"
	}
	switch {
	case st.Steps == 0:
	case st.Scheduled && !st.Killed:
		v.Schedule = fmt.Sprintf("step %d of %d, next promotion %s", st.Step+1, st.Steps, p.when(st.NextStepAt))
	case st.Scheduled:
		v.Schedule = fmt.Sprintf("step %d of %d, paused by the kill", st.Step+1, st.Steps)
	case st.Step == st.Steps-1:
		v.Schedule = fmt.Sprintf("step %d of %d: done", st.Step+1, st.Steps)
	default:
		v.Schedule = fmt.Sprintf("step %d of %d, stopped by a percent set by hand", st.Step+1, st.Steps)
	}
	if !st.Expires.IsZero() {
		v.Expiry = "expires " + p.when(st.Expires)
		if st.Stale {
			v.Expiry = "STALE: expired " + p.when(st.Expires) + "; remove the gate from the code"
		}
	}
	if gs, ok := g.Guard(); ok {
		v.Guard = guardText(rollout.Counts{Old: gs.Old, New: gs.New}, gs.Looks, gs.Z, gs.Critical, gs.Tripped)
	}
	if fv != nil {
		v.Differs = fv.differs(st)
		v.FleetGuard = fv.guard(st.Name)
	}
	return v
}

func armText(a rollout.ArmCounts) string {
	s := fmt.Sprintf("%d calls, %d failed", a.Calls, a.Failures)
	if a.Calls > 0 {
		s += fmt.Sprintf(" (%.2f%%)", 100*float64(a.Failures)/float64(a.Calls))
	}
	return s + fmt.Sprintf(", %d panics, %d mismatches", a.Panics, a.Mismatches)
}

// guardText describes a guard's window and last look, rollout's or a
// fleet Guard's.
func guardText(w rollout.Counts, looks int, z, critical float64, tripped string) *guardView {
	v := &guardView{Old: armText(w.Old), New: armText(w.New)}
	switch {
	case tripped != "":
		v.Verdict, v.Tripped = "tripped: "+tripped, true
	case looks == 0:
		v.Verdict = "no look yet: too few calls of the new arm"
	default:
		v.Verdict = "healthy at the last look"
	}
	if looks > 0 {
		v.Look = fmt.Sprintf("look %d: z=%.2f, limit %.2f", looks, z, critical)
	}
	return v
}

// fleetView is the fleet table.
type fleetView struct {
	Err     string // why the store could not be read
	Self    *fleet.Instance
	Head    string
	Config  string
	Members []memberView
	Live    int
	Bad     int

	view fleet.View
}

type memberView struct {
	ID, Host, Build string
	Self            bool
	Applied         string
	Config          string
	Heartbeat       string
	Marks           []string // VANISHED, STOPPED, STALE, REFUSING, BEHIND, CONFIG DIFFERS
	Problems        []string
	Rejected        string
	Guards          []string // what its fleet Guards do
	Bad             bool
}

func (fv *fleetView) set(p *page, v fleet.View) {
	fv.view = v
	fv.Head = fmt.Sprintf("epoch %s, version %d", short(v.Head.Epoch, 8), v.Head.Version)
	switch {
	case v.ConfigError != "":
		fv.Config = "config version " + strconv.FormatUint(v.ConfigVersion, 10) + " unreadable: " + v.ConfigError
	case v.ConfigVersion > 0:
		fv.Config = configText(v.Config)
	}
	for _, m := range v.Instances {
		mv := memberView{ID: m.ID, Host: m.Host, Build: m.Build, Problems: m.Problems, Bad: !m.Current(),
			Applied: fmt.Sprintf("%s v%d", short(m.Applied.Epoch, 8), m.Applied.Version),
			Config:  fmt.Sprintf("%q %s", m.Config.Version, short(m.Config.Hash, 19)), Heartbeat: p.when(m.Sent)}
		if m.Config.Hash == "" {
			mv.Config = "none"
		}
		mv.Self = fv.Self != nil && fv.Self.ID == m.ID
		switch {
		case m.Stopped:
			mv.Marks = append(mv.Marks, "STOPPED")
		case !m.Live:
			mv.Marks = append(mv.Marks, "VANISHED")
		}
		if m.Stale {
			mv.Marks = append(mv.Marks, "STALE")
		}
		if m.Refusing {
			mv.Marks = append(mv.Marks, "REFUSING")
		}
		if m.Behind && m.Live {
			mv.Marks = append(mv.Marks, "BEHIND")
		}
		if m.ConfigDiffers {
			mv.Marks = append(mv.Marks, "CONFIG DIFFERS")
		}
		for _, g := range m.Guards {
			switch {
			case g.Mode == fleet.ModeLocal:
				mv.Marks = append(mv.Marks, "GUARD LOCAL")
				mv.Guards = append(mv.Guards, "guard of "+g.Gate+" judges this instance alone: "+g.StoreError)
			case g.Holder:
				mv.Guards = append(mv.Guards, fmt.Sprintf("judges %s for the fleet (%s)", g.Gate, instances(g.Instances)))
			}
		}
		if r := m.Rejected; r != nil {
			mv.Rejected = fmt.Sprintf("last refused %s version %d: %s", r.Key, r.Version, r.Error)
		}
		if m.Live {
			fv.Live++
		}
		if mv.Bad {
			fv.Bad++
		}
		fv.Members = append(fv.Members, mv)
	}
	if v.Unreadable > 0 {
		p.Banners = append(p.Banners, fmt.Sprintf("%d heartbeats in the fleet store could not be read.", v.Unreadable))
	}
	if fv.Bad > 0 {
		p.Banners = append(p.Banners, fmt.Sprintf("%d of %d instances are not current: see the fleet table.", fv.Bad, len(v.Instances)))
	}
}

// differs lists the live instances whose state of the gate differs from
// st (other than this instance).
func (fv *fleetView) differs(st rollout.Status) []string {
	var out []string
	for _, m := range fv.view.Instances {
		if !m.Live || fv.Self != nil && m.ID == fv.Self.ID {
			continue
		}
		gs, ok := m.Gate(st.Name)
		switch {
		case !ok:
			out = append(out, m.ID+": has no such gate")
		case gs.Killed != st.Killed:
			if gs.Killed {
				out = append(out, m.ID+": killed ("+gs.Reason+")")
			} else {
				out = append(out, m.ID+": live at "+pct(gs.Percent))
			}
		case gs.Percent != st.Percent:
			out = append(out, m.ID+": at "+pct(gs.Percent))
		}
	}
	return out
}

// guard finds the fleet Guard of gate name: the live instance that holds
// its lease, else this instance's own Guard.
func (fv *fleetView) guard(name string) *guardView {
	view := func(g fleet.GuardStatus, scope string) *guardView {
		v := guardText(g.Window, g.Looks, g.Z, g.Critical, g.Tripped)
		v.Scope = scope
		return v
	}
	for _, m := range fv.view.Instances {
		for _, g := range m.Guards {
			if m.Live && g.Gate == name && g.Holder && g.Mode == fleet.ModeFleet {
				return view(g, fmt.Sprintf("judged by %s, pooled from %s", m.ID, instances(g.Instances)))
			}
		}
	}
	if fv.Self == nil {
		return nil
	}
	for _, g := range fv.Self.Guards {
		switch {
		case g.Gate != name:
		case g.Mode == fleet.ModeLocal:
			return view(g, "LOCAL: the store cannot be reached ("+g.StoreError+"); this instance judges its own counts")
		default:
			return view(g, "no live instance holds its lease now")
		}
	}
	return nil
}

// detailView is a gate's history and exposure report, newest first, and
// with a fleet store that keeps one, the fleet's.
type detailView struct {
	History  []eventView
	Lost     bool // the history lost its oldest events
	Windows  []windowView
	Failures []failureView
	Partial  bool

	Fleet *fleetDetail
}

// fleetDetail is a gate's fleet history and exposure (fleet.ReadHistory,
// fleet.ReadExposure), newest first.
type fleetDetail struct {
	Err      string
	History  []eventView
	Windows  []windowView
	Failures []failureView
	New      rollout.OutcomeCounts
	Partial  bool
}

type eventView struct {
	Who                      string // fleet: the publisher, or the instance of its own change
	Seq                      uint64
	At, Kind, Source, Reason string
	Percent                  string
	Killed                   bool
}

type windowView struct {
	From, To, Percent, Event string
	Killed, Live             bool
	New                      rollout.OutcomeCounts
}

type failureView struct{ At, Key, Outcome, Instance string }

// window formats an exposure window, of one gate or of the fleet, begun by
// the change kind by source (with its reason); a zero to is "now".
func (p *page) window(from, to time.Time, percent float64, kind, source, reason string, killed, live bool,
	calls rollout.OutcomeCounts) windowView {
	ev := strings.TrimSpace(kind + " " + source)
	if reason != "" {
		ev += ": " + reason
	}
	end := p.when(to)
	if end == "" {
		end = "now"
	}
	return windowView{From: p.when(from), To: end, Percent: pct(percent), Event: ev, Killed: killed, Live: live, New: calls}
}

func (p *page) detail(g *rollout.Gate) *detailView {
	d := &detailView{}
	h := g.History()
	d.Lost = len(h) > 0 && h[0].Seq != 0
	for _, e := range slices.Backward(h) {
		d.History = append(d.History, eventView{Seq: e.Seq, At: p.when(e.At), Kind: e.Kind, Source: e.Source,
			Reason: e.Reason, Percent: pct(e.Percent), Killed: e.Killed})
	}
	rep := g.Exposure(time.Time{}, p.now)
	d.Partial = rep.Partial
	for _, w := range slices.Backward(rep.Windows) {
		d.Windows = append(d.Windows, p.window(w.From, w.To, w.Percent, w.Event.Kind, w.Event.Source, w.Event.Reason,
			w.Killed, w.Live, w.New))
	}
	for _, f := range slices.Backward(rep.Failures) {
		d.Failures = append(d.Failures, failureView{At: p.when(f.At), Key: f.Key, Outcome: f.Outcome})
	}
	return d
}

// fleetDetail formats a gate's fleet history and exposure report.
func (p *page) fleetDetail(h fleet.History, rep fleet.Exposure) *fleetDetail {
	d := &fleetDetail{Partial: h.Partial, New: rep.New}
	for _, e := range slices.Backward(h.Entries) {
		ev := eventView{At: p.when(e.At), Kind: e.Kind, Source: e.Source, Reason: e.Reason,
			Killed: e.Killed || e.Kind == rollout.EventKill}
		switch {
		case e.Instance != "":
			ev.Who = "instance " + e.Instance
		case e.Version > 0:
			ev.Who = fmt.Sprintf("%s (version %d)", e.By, e.Version)
		default:
			ev.Who = e.By
		}
		if e.Percent != nil {
			ev.Percent = pct(*e.Percent)
		}
		d.History = append(d.History, ev)
	}
	for _, w := range slices.Backward(rep.Windows) {
		d.Windows = append(d.Windows, p.window(w.From, w.To, w.Percent, w.Entry.Kind, w.Entry.Source, w.Entry.Reason,
			w.Killed, w.Live, w.New))
	}
	for _, f := range slices.Backward(rep.Failures) {
		d.Failures = append(d.Failures, failureView{At: p.when(f.At), Key: f.Key, Outcome: f.Outcome, Instance: f.Instance})
	}
	return d
}

package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/blastradius/blastradius/console"
)

// FuzzActionForm posts arbitrary form values to every action, confirmed
// or not: the console answers 200, 400, 404, 405, 413 or a redirect of
// ServeMux's path cleaning, changes the gate only
// on a confirmed 200, and every tag of the page is one of its template's:
// no input gets through unescaped. The reason starts with a mark that the
// page has nowhere else, so an unescaped reason is found wherever it is.
// mark starts every fuzzed reason.
const mark = "\u2042"

// tagRE matches what a browser would take for a tag (or a comment or
// doctype): '<' then a letter, '/', '!' or '?'.
var tagRE = regexp.MustCompile(`<[/!?]?([A-Za-z][^\s/>]*|-*)`)

// templateTags are the tags of console.html.
var templateTags = map[string]bool{}

func init() {
	for _, t := range strings.Fields(`doctype html head meta title link body header a span p main h1 h2 h3 section
		dl dt dd q strong br ul li div form label input button table thead tbody tr th td em small`) {
		templateTags[t] = true
	}
}

func FuzzActionForm(f *testing.F) {
	f.Add("kill", "<script>alert(1)</script>", "", true)
	f.Add("kill", "INC-42: payment errors", "", false)
	f.Add("percent", "", "12.5", true)
	f.Add("percent", "", "1e2", true)
	f.Add("percent", "", "-0", true)
	f.Add("resume", "\"'><b>", "NaN", true)
	reg := newRegistry(f)
	h := console.Handler(reg, authorize)
	g := gate(f, reg, "checkout-v2")
	f.Fuzz(func(t *testing.T, action, reason, percent string, confirm bool) {
		g.Resume()
		_ = g.SetPercent(5)
		reason = mark + reason
		form := url.Values{"reason": {reason}, "percent": {percent}}
		if confirm {
			form.Set("confirm", "yes")
		}
		w := post(t, h, "/gates/checkout-v2/"+url.PathEscape(action), form)
		body := w.Body.String()
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed,
			http.StatusRequestEntityTooLarge,
			http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect: // ServeMux cleaning a path of "." or ".."
		default:
			t.Fatalf("status %d", w.Code)
		}
		if i := strings.IndexByte(reason, '<'); i >= 0 && strings.Contains(body, reason[:i+1]) {
			t.Fatalf("reason %q in the page unescaped", reason)
		}
		for _, tag := range tagRE.FindAllStringSubmatch(body, -1) {
			if !templateTags[strings.ToLower(tag[1])] {
				t.Fatalf("tag <%s> is not the template's: an input got through unescaped:\n%s", tag[1], body)
			}
		}
		st := g.Status()
		changed := st.Killed || st.Percent != 5
		if changed && (w.Code != http.StatusOK || !confirm) {
			t.Fatalf("the gate changed (%+v) on a %d with confirm=%v", st, w.Code, confirm)
		}
		if action == "kill" && confirm && w.Code == http.StatusOK && st.Reason != strings.TrimSpace(reason) {
			t.Fatalf("killed with reason %q, want %q", st.Reason, strings.TrimSpace(reason))
		}
	})
}

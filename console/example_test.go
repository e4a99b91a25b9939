package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/blastradius/blastradius/console"
	"github.com/blastradius/blastradius/rollout"
)

func ExampleHandler() {
	reg, _ := rollout.NewRegistry()
	g, _ := rollout.New("checkout-v2", rollout.WithPercent(5))
	_ = reg.Register(g)
	authorize := func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer s3cret" }

	mux := http.NewServeMux()
	mux.Handle("/admin/rollout/", http.StripPrefix("/admin/rollout", rollout.Handler(reg, authorize)))
	mux.Handle("/admin/console/", http.StripPrefix("/admin/console", console.Handler(reg, authorize)))

	// What an operator's browser sends: the kill form, then its
	// confirmation.
	for _, confirm := range []string{"", "yes"} {
		form := url.Values{"reason": {"INC-42: payment errors"}, "confirm": {confirm}}
		r := httptest.NewRequest("POST", "/admin/console/gates/checkout-v2/kill", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", "Bearer s3cret")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		st := g.Status()
		fmt.Printf("confirm=%q: %d, killed=%v %q\n", confirm, w.Code, st.Killed, st.Reason)
	}
	// Output:
	// confirm="": 200, killed=false ""
	// confirm="yes": 200, killed=true "INC-42: payment errors"
}

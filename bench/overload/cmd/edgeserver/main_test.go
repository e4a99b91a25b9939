package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSetup: each contender builds, an unknown one is an error, and the
// stats of a limit show its gauges.
func TestSetup(t *testing.T) {
	if _, _, err := setup("nginx", 8); err == nil {
		t.Error("unknown contender: no error")
	}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for contender, want := range map[string]string{"none": "", "static": "limit=8 inflight=0", "adaptive": "limit=1 inflight=0"} {
		mw, stats, err := setup(contender, 8)
		if err != nil {
			t.Fatalf("%s: %v", contender, err)
		}
		if mw != nil {
			mw(ok).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		}
		if got := stats(); !strings.HasPrefix(got, want) || (want == "") != (got == "") {
			t.Errorf("%s: stats %q, want prefix %q", contender, got, want)
		}
	}
}

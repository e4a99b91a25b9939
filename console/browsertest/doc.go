// Package browsertest drives the operator console of package console in
// headless Chromium through the DevTools protocol (chromedp): it loads the
// page, kills a gate by filling in the reason and confirming, checks that a
// cross-origin POST is refused and that a hostile kill reason renders as
// text, and saves screenshots. It is a module of its own, so the core
// module does not depend on chromedp.
//
// The test needs the chromium binary (Debian: apt-get install -y
// chromium). Without it, it skips, or fails when CI=true. Run
//
//	go test -count=1 -artifacts ./console/browsertest/
//
// to keep the screenshots (console.png, console-phone.png,
// console-escaping.png) under the artifacts directory, and
//
//	UPDATE_SCREENSHOT=1 go test -count=1 ./console/browsertest/
//
// to write docs/console.png of the repository.
package browsertest

// Package console serves an operator console for a rollout.Registry: one
// HTML page, rendered on the server with html/template and the standard
// library only (no JavaScript, no external assets, so it works on an
// air-gapped network and on a phone), that shows every gate and, with a
// fleet store, every instance, and kills, resumes or sets the percent of a
// gate in two clicks.
//
//	mux.Handle("/admin/rollout/", http.StripPrefix("/admin/rollout", rollout.Handler(reg, authorize)))
//	mux.Handle("/admin/console/", http.StripPrefix("/admin/console", console.Handler(reg, authorize,
//		console.WithFleet(store, syncer))))
//
// # Page
//
// The page lists every gate: its owner, percent, schedule step and next
// promotion, killed or live, the kill's source and reason, its guard's
// window counts, z, limit and last verdict, and its expiry, with stale
// gates marked. A gate's own page adds its history and its exposure report
// (rollout.Gate.History and Gate.Exposure).
//
// With WithFleet, a table shows every instance that heartbeats to the
// store: its build, applied version, config hash and last heartbeat, with
// stopped, vanished, stale, refusing and behind instances and fleet guards
// judging locally marked in words; a gate's card shows its fleet Guard
// (fleet.WithSyncer: as the instance that holds the lease reports it) and
// the instances whose state of the gate differs; a gate's page adds the
// fleet history and exposure (fleet.ReadHistory, fleet.ReadExposure) when
// the store keeps them. If the store cannot be read, a banner at the top
// says so and the actions still work on this instance.
//
// # Actions
//
// Kill (with a required reason), resume and set percent are POST forms.
// The first POST answers with a confirmation page that repeats what will
// happen; only its confirm button applies the action. The answer is the
// gate's resulting state and, with WithFleet, which instances applied it
// and which lag: the action is applied on this instance at once, then
// published to the store (fleet.Publisher) and waited for (Publisher.Wait,
// bounded by WithTimeout).
//
// # Security
//
// There is no unauthenticated mode: every request must pass the authorize
// func, or it is answered 403. State changes only by POST, and a POST from
// another origin is refused 403 by http.CrossOriginProtection. Every value
// (a gate name, a kill reason, a key, an error from a store) is escaped by
// html/template. Every response carries a Content-Security-Policy that
// allows no script, no frame and no form target outside the console
// ("default-src 'none'; style-src 'self'; form-action 'self';
// frame-ancestors 'none'; base-uri 'none'"), X-Frame-Options: DENY,
// X-Content-Type-Options: nosniff, Cache-Control: no-store and
// Referrer-Policy: no-referrer.
package console

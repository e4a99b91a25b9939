// Package rollout puts new code behind a gate that enables it for a sticky
// share of users, with a kill switch, a ramp schedule, a registry of named
// gates loaded from JSON config, an admin HTTP handler, and a guard that
// kills the gate on its own when the new code does worse than the old.
//
// # Gates
//
//	g, err := rollout.New("checkout-v2", rollout.WithPercent(5))
//	if g.Enabled(userID) { newPath() } else { oldPath() }
//	g.Kill("INC-1234: payment errors") // every call that starts now returns false
//
// A Gate enables a key when the key's bucket, a versioned hash of the
// gate's salt and the key that every process computes alike (Bucket), is
// below its percent, from 0 to 100 in steps of 0.0001. So a key keeps its
// answer while the percent holds, and a key enabled at p stays enabled at
// any higher p. Enabled takes no lock and allocates nothing. Kill turns
// every key off with one atomic store; Resume restores the percent.
//
// # Schedules
//
// WithSchedule ramps a gate through steps such as 1%, 5% and 100%, each
// held for at least its Hold, while every promotion check
// (WithPromotionCheck, the guard) allows the next one. No goroutine is
// started: Status, Registry.Watch and a sample of Enabled calls move the
// schedule.
//
// # Paths
//
//	lookup, err := rollout.NewPath(gate, rollout.Arms[string, *Account]{
//		Old:      legacy.Account,
//		New:      store.Account,
//		Validate: validAccount,
//		Fallback: true,
//	})
//	acct, err := lookup.Run(ctx, userID, userID)    // the arm the gate picks
//	acct, err := lookup.Shadow(ctx, userID, userID) // Old, with New compared
//
// A Path puts the old and the new implementation of one call behind a
// gate. Run(ctx, key, in) calls the arm the gate routes key to with the
// input in; Shadow serves the old arm and, for the keys the gate enables,
// also calls the new one and compares the results. Both recover panics
// and count every arm's outcome: ok, error, panic (a *PanicError wrapping
// ErrPanic), invalid (Validate rejected the result) or timeout (Timeout).
// Fallback answers a failed new call with old; the failure still counts
// against new. Without Timeout, Run reads no clock, takes no lock and
// allocates nothing.
//
// Shadow always returns old's result. For enabled keys it also runs new
// (after old, or with Async on its own goroutine) with its own timeout
// (default 1 s, not canceled with the caller) and a per-Path cap on shadows
// in flight (MaxConcurrent, default 32; past it the shadow is skipped and
// counted). Results are compared with Equal (default reflect.DeepEqual); a
// mismatch is counted, fed to the guard and logged with both values
// through a log budget (Redact hides them).
//
// # The guard
//
// WithGuard gives a gate a guard. It compares the new arm's failure rate
// with the old arm's on the same traffic, from the outcomes the gate's
// Paths count, and kills the gate when the new arm is worse. Over the life
// of a guard, the chance that it kills a new arm that is no worse than the
// old one is at most 1%, by default.
//
// Its window is counted in calls: a checkpoint every 500 new-arm calls,
// over the last 5,000 new-arm calls and the old-arm calls in the same
// span. At each checkpoint it runs a one-sided pooled two-proportion
// z-test, confirmed by Fisher's exact test, at 99% confidence by default,
// with at least 500 calls per arm. Repeated looks are paid for by alpha
// spending: the error budget is spent gradually as calls accumulate (the
// critical z is 3.24 at the first look and rises slowly). It also trips at
// once on any panic of the new arm and on mismatches reaching 5%. A trip
// kills the gate with the numbers in Status.Reason, such as "new 2.8%
// failures (14/500) vs old 0.0% (0/51818), z=38.1 (...)". The guard holds
// schedule promotions while the step has fewer than 500 new-arm calls or
// the window's z is at least 2.33; a hold spends none of the error budget.
// On a fleet, give the gate no guard and run one fleet.Guard per instance:
// it runs this test once on the pooled counts of every instance.
//
// # Registry, config and admin
//
// A Registry holds gates by name and the names retired for good (Retire),
// so that a name is never reused. LoadConfig applies a JSON document of
// per-gate settings only if every entry in it is valid, keeps the last good
// config otherwise, and reports a hash of what it applied, which a fleet
// can compare; Watch reloads a file. A document is rejected whole (an
// unknown, retired or duplicate name, an out-of-range percent, a repeated
// key, malformed JSON, over 1 MiB) with a *ConfigError naming the entry.
// Handler serves the admin API behind an authorize func (there is no
// unauthenticated mode): GET /, GET /{name}, POST /{name}/kill, /resume and
// /percent, GET /{name}/history and /{name}/exposure?from=&to=; client
// mistakes get 400, 403, 404, 405 or 413, never a 5xx. Package console
// serves the same registry as an HTML page.
// OnChange calls a func after every change of a registered gate (kill,
// resume, percent, schedule step, config, registration), with no lock
// held; package fleet heartbeats with it, so a local kill shows in the
// fleet view at once. KillBy, ResumeBy and SetPercentBy make a change on
// behalf of a source (a fleet applies its records with KilledByFleet),
// which Status.KilledBy and the history record.
//
// # Who was affected
//
// Every gate keeps its history (Gate.History): its creation and each change
// of percent, schedule step, kill (with its source: a call, the config,
// the guard's verdict or a fleet, and its reason) and resume, with its time by the
// gate's clock; the last HistorySize (256) events. Since routing depends
// only on the salt, the key and the percent, Gate.WasEnabled(key, at)
// answers from the history and Bucket alone whether a key went through the
// new path at a given moment, for any key, seen or not. Gate.Exposure(from,
// to) reports the windows in which the gate held each state, the new arm's
// outcomes in each, and the keys of its last MaxFailureSamples (100)
// failures, with their outcome and time. Nothing of this costs Enabled or a
// successful call anything: the history records changes, each with a
// snapshot of the call counters, and only a failed call of the new arm
// reads the clock to be sampled.
//
// # Configuration and logs
//
// An invalid option fails at construction, with an error wrapping
// ErrInvalidConfig that names the option and its value (Handler panics
// instead). Nil means the default for WithClock, WithLogger and
// WithMeterProvider. Repeated log messages go through a log budget: the
// logger's own if its handler is a *logbudget.Handler (see WithLogger).
//
// # Telemetry
//
// Gates report the gauge blastradius.rollout.percent (the share of keys
// enabled now: 0 while killed) and the counter blastradius.rollout.kills,
// by feature_flag.key (from the OpenTelemetry feature-flag semantic
// conventions) and, on kills, reason: KilledByCall, KilledByConfig,
// KilledByGuard or KilledByFleet. Paths count calls in blastradius.rollout.calls by
// feature_flag.key, feature_flag.result.variant ("old" or "new") and
// outcome; Shadow counts mismatches in blastradius.rollout.mismatches and
// skipped calls of the new arm in blastradius.rollout.shadow.skipped. A
// Registry counts config documents in blastradius.rollout.config.loads by
// result ("applied" or "rejected"). Log records suppressed by a budget are
// counted in blastradius.logbudget.suppressed.
//
// # Traces
//
// Path.Run and Path.Shadow record each call as events on the span in the
// caller's ctx, and only when that span is recording: an untraced or
// sampled-out call allocates nothing for traces. Nothing starts a span of
// its own, so there is no tracer provider to give. Every event has
// feature_flag.key.
//
//   - feature_flag.evaluation (semantic conventions): the gate's decision for
//     the key, with feature_flag.provider.name "blastradius",
//     feature_flag.result.variant ("new" if the gate enables the key,
//     otherwise "old"), feature_flag.result.reason ("static" at 0% or 100%,
//     "split" in between, "disabled" when killed), mode ("run" or "shadow")
//     and outcome, that of the arm that served the call: for Run the arm
//     the variant names, for Shadow always Old.
//   - blastradius.rollout.fallback: Run called Old after New failed
//     (Fallback), with Old's outcome.
//   - blastradius.rollout.shadow: Shadow's call of New returned, with its
//     outcome; with Async, only if the span is still recording by then.
//   - blastradius.rollout.shadow.mismatch: New's result differed from Old's.
//   - blastradius.rollout.shadow.skipped: New was not called, the cap
//     MaxConcurrent being reached.
package rollout

// Package rollout gates new code paths by sticky percentage, with a kill
// switch, a ramp schedule, a registry of named gates with a JSON config
// loader, and an admin HTTP handler; Run and Shadow put the old and new
// paths behind a gate, and a guard kills the gate on its own when the new
// path does worse than the old one.
//
// It answers incidents I2, I4 and I5 of the design: a one-line change that
// broke payments because it reached everyone at once (I2); a reviewed and
// baked change whose rollback took over ten minutes (I4); and Knight
// Capital, where new code reached 7 of 8 servers and a repurposed flag woke
// dead code on the 8th, with no kill switch (I5). A gate keeps a new path to
// 1%, then 5%, then 100% of users; Kill stops it everywhere in the process
// with one atomic store; a Registry rejects config that names an unknown or
// retired gate, so a name is never repurposed, and reports a config hash
// that a fleet can compare. In I2 a lookup began to return null instead of
// an entity, and payments broke for hours while alerts went unseen: Shadow
// would have served the old answers while counting the new path's
// mismatches, and the guard would have killed the gate after 500 calls of
// the new path, at 1%, with no human.
//
// # Gates
//
//	g, err := rollout.New("checkout-v2", rollout.WithPercent(5))
//	if g.Enabled(userID) { newPath() } else { oldPath() }
//	g.Kill("INC-1234: payment errors") // every call that starts now returns false
//
// Percents run from 0 to 100 in steps of 0.0001 (one bucket); a value that
// is not a whole number of steps is rejected, not rounded. A killed gate
// keeps its percent, which Resume restores.
//
// # The bucket mapping (version v1)
//
// Every process, architecture and release must map a key to the same
// bucket, so the mapping is specified here and pinned by golden vectors in
// the tests. To reproduce it in another language:
//
//  1. Encode three components in order: the string "v1", the salt (the
//     gate's name unless WithSalt is used) and the key. Each component is
//     its length in bytes as an unsigned LEB128 varint (Go's
//     binary.AppendUvarint: 7 bits at a time, low bits first, high bit set
//     on every byte but the last), followed by its bytes. Strings are taken
//     as raw bytes (Go strings are usually UTF-8); nothing is normalized.
//  2. Hash the encoded bytes with 64-bit FNV-1a: h = 14695981039346656037;
//     for each byte b: h = (h XOR b) × 1099511628211 mod 2⁶⁴.
//  3. Finalize with the splitmix64 mixer:
//     h = (h XOR h>>30) × 0xbf58476d1ce4e5b9;
//     h = (h XOR h>>27) × 0x94d049bb133111eb;
//     h = h XOR h>>31 (all mod 2⁶⁴).
//  4. The bucket is the high 64 bits of the 128-bit product h × 1000000,
//     a number in [0, 1000000).
//
// A key is enabled at percent p when bucket < p × 10⁴. So a key enabled at
// p is enabled at every p' > p (monotonic), and the same key gets the same
// answer everywhere (sticky, deterministic). Gates with different salts
// enable independent sets of keys. Bucket computes the mapping. Enabled
// hashes with the salt's state precomputed, loads one atomic word and takes
// no lock; it does not allocate.
//
// # Schedules
//
// WithSchedule ramps a gate through steps of {Percent, Hold}. The first step
// starts when New returns. A step advances only after its Hold has passed,
// one step at a time, and only if every promotion check (WithPromotionCheck;
// later the automatic guard) allows it; the next step's Hold starts at the
// moment of promotion, so each step is held for at least its Hold however
// late the evaluation runs. No goroutine is started: the schedule is
// evaluated lazily, with the gate's clock, by
//
//   - Status, on every call (and so by the admin handler's GET);
//   - Registry.Watch, on every poll: with Watch running, a promotion lags
//     its due time by at most one poll interval;
//   - Enabled, on a random sample of about one call in 256 while a
//     promotion is pending. Enabled never reads the clock otherwise. The
//     sample uses the runtime's per-thread random source, so it adds no
//     shared write. The lag it leaves is random: the chance that n Enabled
//     calls after the due time all skip the check is (255/256)ⁿ, for example
//     0.04% for n = 2,000.
//
// A gate that sees few Enabled calls and no Watch should have Status called
// periodically. SetPercent stops the schedule (an operator's setting wins);
// Kill freezes it; Resume restarts the current step's Hold.
//
// # Registry and config
//
// A Registry holds gates by name and tombstones (Retire) of names that must
// never be reused. LoadConfig applies a JSON document of per-gate entries
// only if every entry is valid, and otherwise returns a *ConfigError that
// names the offending entry and keeps the last good config. Registry.Watch
// reloads a file when it changes. Handler serves the admin API and has no
// unauthenticated mode.
//
// # Run and Shadow
//
//	acct, err := rollout.Run(ctx, gate, userID, oldLookup, newLookup,
//		rollout.WithValidate(func(a *Account) error { ... }), rollout.WithFallback())
//	acct, err := rollout.Shadow(ctx, gate, userID, oldLookup, newLookup, rollout.WithAsync())
//
// Run routes a call to one arm by gate.Enabled(key) and records the arm's
// outcome: ok, error, panic (recovered, returned as a *PanicError that
// wraps ErrPanic), invalid (WithValidate rejected the result; returned as
// an error wrapping ErrInvalidResult) or timeout (WithTimeout's own
// deadline passed). WithFallback answers a failed new call with the old
// arm. Without WithTimeout, Run reads no clock, takes no lock and
// allocates nothing; recording is one atomic add, plus one for the guard
// on the new arm.
//
// Shadow always returns the old arm's result. For keys the gate enables it
// also runs the new arm, on the caller's goroutine or (WithAsync) its own,
// with panic isolation, its own timeout (default 1s, not cancelled with the
// caller's context) and a cap on the gate's shadow calls in flight
// (default 32; past it the call is skipped and counted). If both arms
// succeed, WithEqual (default reflect.DeepEqual) compares the results
// (WithValidate judges both arms for the counts, but Shadow serves the old
// result unchanged); a
// mismatch is counted, fed to the guard as a failure of the new arm and
// logged with both values (WithRedact replaces them) through the gate's log
// budget of 10 lines a minute. A goroutine of WithAsync ends when the new
// arm returns, so an arm that honors its context ends by the timeout; one
// that does not keeps its concurrency slot, so the cap bounds the damage.
//
// # The guard
//
// WithGuard gives a gate a guard. It reads the gate's call counts, so the
// hot path adds only one atomic add on calls of the new arm. A failure of
// an arm is an error, panic, invalid result or timeout; for the new arm,
// also a Shadow mismatch.
//
// Window: every WithCheckEvery (default 500) calls of the new arm the guard
// takes a checkpoint. The window is the last WithWindow (default 5,000)
// calls of the new arm and the old arm's calls over the same span of
// traffic: it is counted in calls, so no clock is read, and both arms are
// measured at the same time.
//
// Test: each checkpoint gets one look, as soon as both arms have at least
// WithMinSamples (default 500) calls in the window: at the checkpoint, or,
// if the old arm is short then (at a gate of 50% it is, half the time, at
// the first checkpoint), when it has caught up. The guard counts only the
// new arm's calls, so it comes back after as many of them as the old arm
// should need at the rate it has been called; a late look's window also
// holds the calls since the checkpoint, and a look still waiting at the
// next checkpoint gives way to that one's. A look computes the one-sided
// two-proportion z statistic with the pooled standard error,
//
//	z = (f₁/n₁ − f₀/n₀) / √(p(1−p)(1/n₁ + 1/n₀)),  p = (f₀+f₁)/(n₀+n₁),
//
// and trips if z reaches the look's critical value and Fisher's exact
// one-sided p-value is within the look's error rate. Fisher's test guards
// the regime where failures are few and the normal approximation is
// anti-conservative (at 0.2% failures and a 10% gate, z alone tripped 1.8%
// of healthy rollouts; with Fisher, 0.3%).
//
// Repeated looks: the guard looks again and again, so each look gets only
// part of the error rate α = 1 − confidence (default 0.01). It spends α
// along the new arm's calls n since the guard started or the gate resumed
// by the spending function α(n) = α·n²/(n² + n₀²), with n₀ = 4 × the
// minimum samples (2,000 by default); a look at n, after a look at n', has
// error rate α(n) − α(n'), and its critical z is Φ⁻¹(1 − (α(n) − α(n'))).
// Looks are timed by call counts alone, never by failures, so by the union
// bound the chance that a guard ever trips on a new arm that
// is no worse than the old one is at most α, however long it runs. The
// price is a rising bar: by default the critical z is 3.24 at the first
// look (500 calls), 2.95–2.99 at looks 2–4, 3.9 at 10,000 calls and about
// 5.4 at 100,000, so a late, small regression is caught more slowly; large
// ones (I2's 3% nulls gave z = 38) and the absolute limits are not
// affected. Measured through Run, a gate at 50% routing keys by their
// hash, over 5,000 seeded rollouts: both arms failing 1%, 0.5% tripped
// within 10,000 calls of the new arm; old 0.1% against new 1%, 86% tripped
// within 2,000 calls of the new arm; old 0.1% against new 3%, 78% tripped
// within 750 (the first look; 42% when a look whose old arm was short was
// skipped). At a gate above 50% the old arm is the smaller sample, and the
// test needs more calls of the new arm for the same power.
//
// Absolute limits trip at once, whatever the old arm does: WithMaxPanics
// (default 1: any panic of the new arm in the window) and
// WithMaxMismatchRatio (default 5% of the new arm's calls in the window,
// once it has the minimum samples).
//
// A trip kills the gate with Status.KilledBy = KilledByGuard and a reason
// that states the numbers, such as "new 4.1% failures (41/1000) vs old
// 0.20% (2/1000), z=6.0 (limit 2.88 at look 1; Fisher p=7.4e-11)". Resume
// starts a fresh test. Gate.Guard reports the window's counts.
//
// Promotion: the guard vetoes a schedule promotion while the new arm has
// had fewer than the minimum calls since the last promotion, while the old
// arm has fewer than the minimum in the window, or while the window's z
// reaches the unadjusted critical value Φ⁻¹(confidence) (2.33): a hold is
// no verdict, so it spends no error rate. A step of a low-traffic gate is
// therefore held until it has seen enough calls.
//
// # Telemetry
//
// Gates report the observable gauge blastradius.rollout.percent (the share
// of keys enabled now: 0 while killed) and the counter
// blastradius.rollout.kills, with the attribute feature_flag.key (from the
// OpenTelemetry feature-flag semantic conventions) and, on kills, reason:
// "manual", "config" or "guard". A Registry counts config documents in
// blastradius.rollout.config.loads by result ("applied" or "rejected").
// Run and Shadow count calls in blastradius.rollout.calls, with
// feature_flag.key, feature_flag.result.variant ("old" or "new") and
// outcome; Shadow counts mismatches in blastradius.rollout.mismatches and
// skipped shadow calls in blastradius.rollout.shadow.skipped. These three
// are observable counters over atomic counts, so recording costs one
// atomic add and no SDK call.
package rollout

// Package rollout gates new code paths by sticky percentage, with a kill
// switch, a ramp schedule, a registry of named gates with a JSON config
// loader, and an admin HTTP handler.
//
// It answers incidents I2, I4 and I5 of the design: a one-line change that
// broke payments because it reached everyone at once (I2); a reviewed and
// baked change whose rollback took over ten minutes (I4); and Knight
// Capital, where new code reached 7 of 8 servers and a repurposed flag woke
// dead code on the 8th, with no kill switch (I5). A gate keeps a new path to
// 1%, then 5%, then 100% of users; Kill stops it everywhere in the process
// with one atomic store; a Registry rejects config that names an unknown or
// retired gate, so a name is never repurposed, and reports a config hash
// that a fleet can compare.
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
// # Telemetry
//
// Gates report the observable gauge blastradius.rollout.percent (the share
// of keys enabled now: 0 while killed) and the counter
// blastradius.rollout.kills, with the attribute feature_flag.key (from the
// OpenTelemetry feature-flag semantic conventions) and, on kills, reason:
// "manual", "config" or "guard". A Registry counts config documents in
// blastradius.rollout.config.loads by result ("applied" or "rejected").
package rollout

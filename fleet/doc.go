// Package fleet keeps the rollout gates of every instance of a service in
// line: one kill, one percent or one config document, published once,
// reaches all N instances through a store they already share, and the
// operator sees which instance runs what.
//
// It answers incident I5 of the design, Knight Capital: new code reached 7
// of 8 servers, the 8th ran a stale config, and nothing could stop all
// eight at once. With fleet, each instance runs a Syncer beside its
// rollout.Registry; an operator's Publisher (or the blastradius command of
// the Redis driver) kills a gate on every instance, and List shows the one
// that runs a stale document, refuses the current one, or has vanished.
//
//	store, _ := redisfleet.New(redisClient)   // or fleet.NewMemoryStore()
//	s, _ := fleet.New(store, registry)        // in every instance
//	go s.Run(ctx)
//
//	p, _ := fleet.NewPublisher(store)         // in the operator's tool
//	pub, _ := p.Kill(ctx, "checkout-v2", "INC-42")
//	acks, _ := p.Wait(ctx, pub)               // who applied it, who lags
//
// # Model
//
// A Store holds records under keys: "config" (the document), "kill/NAME"
// (the latest kill or resume of a gate) and "percent/NAME". Every publish
// is one atomic write that takes the next version of the store's epoch,
// then a notification that carries nothing. An instance applies the records
// newer than those it has applied, in version order: never by hash, so a
// revert to earlier content applies. A kill is its own record, so an
// instance whose build refuses the current document (it names a gate the
// build does not have) still applies a kill of a gate it has.
//
// # Delivery
//
// Notifications may be lost (Redis pub/sub is fire and forget), so an
// instance reads the whole state again on every notification, on every
// (re)subscription, whenever a heartbeat shows a head it has not applied,
// and on a jittered reconcile (default every 30 s). A failed read is retried
// within half a second. The request path never touches the store: Enabled
// reads the gate's atomic state only.
//
// # Outages and data loss
//
// While the store is unreachable or hung, an instance keeps its last good
// state and keeps serving; the local kill switch and admin handler keep
// working. After WithStaleAfter (default 15 s) it reports itself stale
// (Syncer.Status, the heartbeat, the blastradius.fleet.staleness gauge, one
// log line). When the store returns it reads the state again and never
// applies anything older than what it has. A store that lost its data has a
// new, empty epoch: instances keep their state until the next publish,
// which starts the new epoch at version 1 and applies everywhere. With
// WithCacheFile an instance that cannot reach the store at start-up boots
// from the last state it saw.
//
// # Fleet view
//
// Every instance heartbeats its id, host, build, applied head, config
// version and hash, last refused record, gate states and fleet guards,
// every interval (default 5 s), right after each apply and right after
// every change of a gate made on the instance itself (its admin handler,
// its guard, its schedule: rollout.Registry.OnChange), with a TTL (default
// 15 s). List
// (and Handler, and the blastradius command) marks the instances that are
// behind the store's head, run a config whose hash differs from the store's
// document, refuse its current version, report no store contact, stopped,
// or vanished (their heartbeat expired), and those whose guard judges
// alone because it cannot reach the store.
//
// An instance applies the store's kills, resumes and percents on behalf
// of the fleet (rollout.Gate.KillBy with rollout.KilledByFleet), so its
// Status.KilledBy and its gate's history say "fleet".
//
// # Fleet guard
//
// rollout's guard (rollout.WithGuard) sees one instance's traffic: with N
// instances it needs N times as long to reach a verdict, and N guards whose
// kills all reach the fleet kill a healthy rollout up to N times as often.
// A Guard judges the fleet instead; give the gate no rollout.WithGuard and
// run one Guard per gate in every instance, beside its Syncer, on a
// GuardStore (MemoryStore, redisfleet.Store):
//
//	g, _ := fleet.NewGuard(store, gate, fleet.WithSyncer(s))
//	go g.Run(ctx)
//
// Every batch (default 1 s, each bounded by WithGuardTimeout, default 2 s)
// each instance writes its gate's cumulative
// counts (rollout.Gate.Counts) under its own id with a rising sequence; the
// request path never touches the store, and as the counts are cumulative a
// lost, repeated or late write neither loses nor double-counts a call. The
// instance that holds the gate's lease in the store sums every instance's
// counts and applies rollout's guard to them (rollout.GuardTest: a
// checkpoint every 500 calls of the new arm, the 5,000-call window, the
// z-test with Fisher's confirmation, the error-rate spending and the
// absolute limits), once for the fleet. It keeps the test's state in the
// store from the test's start on, so that if it dies, or loses the lease,
// the next holder goes on where it stopped. A
// trip publishes a kill of the gate through the store, as an operator's
// Publisher.Kill does, with the numbers in its reason, such as "fleet
// guard: new 4.0% failures (26/650) vs old 0.0% (0/650), z=5.2 (limit 3.10
// at look 1; Fisher p=1.2e-08); pooled from 8 instances". While the store
// cannot be reached, each instance's Guard judges its own counts from the
// start of the outage and kills its own gate, and says so (GuardStatus.Mode
// "local", one log line, a problem of the instance in List). With
// WithSyncer, the guard's status (mode, lease holder, looks, window counts,
// last z) is in the instance's heartbeat (Instance.Guards).
//
// Every process writes its counts under an id of its own, so each restart
// adds an entry. On a store that can delete them (CountsDeleter:
// MemoryStore, and any driver that implements it) the lease holder folds
// the counts of processes silent for FoldAfter (10 min) into the test's
// state, then deletes them: the pooled sum stays whole, and a late write of
// a folded process counts nothing again.
//
// # Who was affected, across the fleet
//
// A HistoryStore (MemoryStore, and any driver that implements it) also
// keeps each gate's fleet history: every publish through a Publisher
// (kill, resume, percent, each gate's entry of a config document) with its
// time, actor, store version and reason, and every trip of the fleet guard
// with its pooled numbers; the last MaxHistory (1,024). Each instance's
// Guard also writes its gate's exposure beside its counts, in the batch
// after each change of the gate and otherwise at most once a second: its
// last 32 windows of state with the new arm's outcomes in each
// (rollout.Gate.Exposure) and its last 100 failed keys. ReadHistory merges
// the store's history with each instance's changes (its creation, schedule
// steps, local kills, and when it applied each publish);
// History.WasEnabledOn(instance, key, at) replays that instance's changes
// and hashes the key to tell whether the instance routed the key to the
// new path at that moment, exact even while a kill spreads through the
// fleet; History.WasEnabled(key, at), for a key whose instance is not
// known, tells whether some instance did. ReadExposure pools the
// instances' windows and failed keys over a time range. Handler serves both read-only: GET /gates/{name}/history and
// GET /gates/{name}/exposure?from=&to=.
//
// Measured on simulations of 8 instances that each see 1/8 of a gate at
// 50% (fleet's TestFleetGuardPower and TestFleetGuardFalseKills): with the
// new arm failing 1% against 0.1%, the fleet guard killed after 1,656
// calls of the new arm in all (mean of 100 seeded rollouts), one instance
// that sees all the traffic after 1,585; with both arms failing 1%, it
// killed 2 of 500 rollouts of 20,000 new-arm calls per instance (0.4%),
// where 8 guards of their own killed 17 (3.4%).
//
// # Telemetry
//
// Counters blastradius.fleet.applies and blastradius.fleet.rejections (by
// op: config, kill, resume, percent, unknown), blastradius.fleet.reconnects
// and blastradius.fleet.store.errors (by op: read, heartbeat, subscribe,
// cache); the histogram blastradius.fleet.apply.latency (seconds from the
// store's publish time to the apply, by op); and the gauge
// blastradius.fleet.staleness (seconds since the last store contact, by
// service.instance.id). A Guard counts its verdicts in
// blastradius.fleet.guard.verdicts (by feature_flag.key, mode fleet or
// local, and result pass or trip: each look, and each absolute limit
// reached), and the instance that judges reports the gauges
// blastradius.fleet.guard.looks and blastradius.fleet.guard.z (the last
// look's z statistic), by feature_flag.key and service.instance.id. Repeated log lines pass through a log budget (see
// WithLogger) that counts what it suppresses in
// blastradius.logbudget.suppressed.
package fleet

// Package redisfleet is the Redis driver of package fleet: a Store that
// syncs the rollout gates of every instance of a service through one Redis,
// holds the fleet guard's counts and lease (fleet.GuardStore,
// fleet.CountsDeleter) and each gate's fleet history (fleet.HistoryStore).
//
//	store, err := redisfleet.New(rdb, redisfleet.WithPrefix("checkout"))
//	s, err := fleet.New(store, registry)   // in every instance
//	go s.Run(ctx)
//
// It takes the caller's redis.UniversalClient, so addresses, passwords,
// ACLs, TLS, Sentinel and Cluster work as the service configures them;
// every key is hash-tagged with the prefix, so in a Cluster all of them
// share one slot (see Store for the keys). Every write that must be atomic
// is one Lua script: a publish (the version's INCR, the record, the
// notification), a heartbeat, a counts write compared by sequence, a lease
// compared by holder and the server's clock, a history append with its
// trim. Set ContextTimeoutEnabled on the client so that fleet's per-call
// timeouts cut a hung call short.
//
// Command blastradius (cmd/blastradius) is the operator's tool on it: kill,
// resume, set, publish, fleet, history, exposure and was-enabled.
package redisfleet

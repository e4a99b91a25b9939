// Command admin shows a blastradius rollout registry serving its admin
// handler behind an authorize func, on loopback. It registers two gates and
// a tombstone, loads a config, then acts as the operator over HTTP: a
// request without credentials (403), a config naming the retired flag
// (rejected whole), a kill, a percent change, an unknown gate (404) and a
// bad value (400). It prints each answer, the gates' status and the rollout
// metrics through an OpenTelemetry ManualReader, and exits.
package main

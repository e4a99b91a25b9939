// Command admin shows a blastradius rollout registry serving its admin
// handler and its operator console behind an authorize func, on loopback.
// It registers two gates and a tombstone, loads a config, then acts as the
// operator over HTTP: a request without credentials (403), a config naming
// the retired flag (rejected whole), a kill, a percent change, an unknown
// gate (404) and a bad value (400); then as a browser on the console: the
// page without credentials (401, a basic auth challenge), with them (200),
// and a kill posted by another site's form (403). It prints each answer,
// the gates' status and the rollout metrics through an OpenTelemetry
// ManualReader, and exits.
//
// With -serve ADDR it listens on ADDR, runs the same demo, prints the
// console's URL and keeps serving until interrupted, so a person can open
// it (user operator, password s3cret-operator-token):
//
//	go run ./examples/admin -serve 127.0.0.1:8080
package main

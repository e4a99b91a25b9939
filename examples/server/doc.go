// Command server shows blastradius's edge middleware wired into a real
// net/http server on loopback: edge.Chain(Recover, Shed, Auth). It sends
// itself a handful of requests (a valid token, a legacy one, garbage, a
// token that makes the verifier panic, a panicking handler, a burst over
// the rate limit, a health check), prints each answer, then prints the
// edge and log budget metrics through an OpenTelemetry ManualReader, and
// exits. The three middlewares log through one shared log budget.
package main

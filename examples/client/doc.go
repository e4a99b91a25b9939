// Command client shows blastradius's breaker.Transport on a real
// http.Client against a loopback server. First the server drops every third
// request with a 503, and retries (drawn from the retry budget) absorb it.
// Then the server fails every request: the per-host breaker opens and
// further calls fail fast with breaker.ErrOpen instead of adding load. It
// prints what happened and the breaker metrics through an OpenTelemetry
// ManualReader, and exits.
package main

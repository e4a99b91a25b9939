// Command prometheus serves blastradius's metrics to Prometheus through
// OpenTelemetry's Prometheus exporter (go.opentelemetry.io/otel/exporters/
// prometheus): every package records through the OpenTelemetry API, so a
// service that scrapes Prometheus installs the exporter as its meter
// provider's reader and serves it at /metrics. Nothing else changes.
//
// The service behind it answers GET /stock?item=NAME behind
// edge.Chain(Recover, Shed, Auth). A rollout gate, stock-v2, sends every
// user to the new code path, which asks an inventory service on loopback
// through a breaker.Transport; when that fails, the old path (a local cache)
// answers. At start the program sends itself a little traffic (valid and
// bad tokens, an item the inventory fails on until the breaker opens, a
// handler panic, a burst over the rate limit), prints each answer, and then
// serves until interrupted:
//
//	go run ./examples/prometheus                    # serves on 127.0.0.1:9464
//	curl -s 127.0.0.1:9464/metrics | grep blastradius_
//	curl -X POST -H 'Authorization: Bearer admin' 127.0.0.1:9464/admin/rollout/stock-v2/kill
//
// OpenTelemetry names become Prometheus names: dots become underscores,
// the unit is appended (blastradius_edge_shed_latency_seconds) and counters
// end in _total (blastradius_breaker_calls_total{breaker_name="inventory",
// outcome="success"}); units in braces such as {call} are dropped.
package main

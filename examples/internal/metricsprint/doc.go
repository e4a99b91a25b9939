// Package metricsprint prints the metrics that a ManualReader collected, one
// line per data point, sorted, so the example programs can show their
// blastradius instruments without an exporter module.
package metricsprint

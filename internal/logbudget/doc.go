// Package logbudget implements the blastradius log budget: a slog.Handler
// wrapper that passes at most Limit records per key per Interval and, once an
// interval that suppressed records has ended, writes one summary record with
// the suppressed count. It starts no goroutine: intervals roll over lazily
// when records arrive, and Flush writes any pending summaries on demand.
//
// edge re-exports it as the public edge.LogBudget; compat and rollout use it
// for their own per-request logging.
package logbudget

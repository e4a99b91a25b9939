// Package logbudget keeps logs within a budget: a slog.Handler wrapper that
// passes at most a limit of records per key per interval (default 10 a
// minute, keyed by message and, optionally, one attribute such as
// "reason"), and then writes one summary record with the count it
// suppressed. It is what stops a flood of bad tokens or panics from turning
// into a flood of log lines, stack traces and CPU.
//
//	budget, err := logbudget.New(slog.Default().Handler(), logbudget.WithKeyAttr("reason"))
//	logger := slog.New(budget)
//
// Hand that one logger to every blastradius package (each has WithLogger):
// they all log through the same budget, and one counter,
// blastradius.logbudget.suppressed, counts what it suppressed. A package
// given a logger without a budget wraps it in one of its own with the
// defaults (For).
//
// A budget starts no goroutine: intervals roll over lazily when records
// arrive, so call Flush on shutdown to write any pending summaries.
package logbudget

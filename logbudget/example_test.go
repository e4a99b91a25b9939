package logbudget_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/blastradius/blastradius/logbudget"
)

// One budget for a whole service: at most two records per message and
// reason, then a summary of what was suppressed.
func Example() {
	text := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "since" {
			return slog.Attr{}
		}
		return a
	}})
	budget, err := logbudget.New(text, logbudget.WithLimit(2), logbudget.WithKeyAttr("reason"))
	if err != nil {
		panic(err)
	}
	logger := slog.New(budget) // hand this logger to every blastradius package
	for range 5 {
		logger.Warn("auth failed", "reason", "expired")
	}
	logger.Warn("auth failed", "reason", "malformed")
	budget.Flush(context.Background()) // on shutdown
	// Output:
	// level=WARN msg="auth failed" reason=expired
	// level=WARN msg="auth failed" reason=expired
	// level=WARN msg="auth failed" reason=malformed
	// level=WARN msg="log budget: records suppressed" message="auth failed" suppressed=3 reason=expired
}

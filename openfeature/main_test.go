package openfeature_test

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Gates log state changes to slog.Default(); keep test output readable.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	// Every test shuts down the SDK API it starts, which stops its
	// goroutines and the provider's.
	goleak.VerifyTestMain(m)
}

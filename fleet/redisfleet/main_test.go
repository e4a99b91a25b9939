package redisfleet_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	// Syncers log to slog.Default(), and go-redis logs reconnects; the
	// fault tests make plenty of both.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m)
}

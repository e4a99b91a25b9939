package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blastradius/blastradius/fleet"
	"github.com/blastradius/blastradius/fleet/redisfleet"
)

// fleetStore returns the store the fleet of I5 shares: the in-memory store,
// or, with -redis, a Redis under a key prefix of this run's own, so a
// shared server is not polluted. cleanup deletes the run's keys and closes
// the client; call it once every Syncer has stopped.
func fleetStore(ctx context.Context, addr string) (store fleet.Store, name string, cleanup func() error, err error) {
	if addr == "" {
		return fleet.NewMemoryStore(), "the in-memory store", func() error { return nil }, nil
	}
	client := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true, // fleet's per-call timeout cuts a hung call short
		DialTimeout:           2 * time.Second,
		MaxRetries:            1,
	})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		_ = client.Close()
		return nil, "", nil, fmt.Errorf("redis %s: %w", addr, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "blastradius-tour-" + hex.EncodeToString(b[:])
	rs, err := redisfleet.New(client, redisfleet.WithPrefix(prefix))
	if err != nil {
		_ = client.Close()
		return nil, "", nil, err
	}
	cleanup = func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		var keys []string
		iter := client.Scan(cctx, 0, rs.Pattern(), 100).Iterator()
		for iter.Next(cctx) {
			keys = append(keys, iter.Val())
		}
		err := iter.Err()
		if err == nil && len(keys) > 0 {
			err = client.Del(cctx, keys...).Err()
		}
		if err != nil {
			err = fmt.Errorf("redis %s: delete the keys {%s}:*: %w", addr, prefix, err)
		}
		_ = client.Close()
		return err
	}
	return rs, fmt.Sprintf("Redis %s (keys {%s}:*, deleted after the run)", addr, prefix), cleanup, nil
}

package redisfleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/blastradius/blastradius/fleet"
)

// ErrInvalidConfig is wrapped by every error that New returns for an invalid
// argument or option; the error names the option and its value.
var ErrInvalidConfig = errors.New("redisfleet: invalid config")

// ErrMalformed is wrapped by the error of a reply that does not have the
// shape the driver wrote.
var ErrMalformed = errors.New("redisfleet: malformed reply")

// Defaults of the options.
const (
	// DefaultPrefix is the key namespace.
	DefaultPrefix = "blastradius"
	// DefaultRetention is how long an expired heartbeat is kept, so that the
	// fleet view lists the instance as vanished.
	DefaultRetention = 10 * time.Minute
	// DefaultHealthCheck is how long a subscription may stay silent before
	// the driver pings it, and how long it then waits for the answer.
	DefaultHealthCheck = 5 * time.Second
)

// Resubscription delays: doubling from resubMin to resubMax.
const (
	resubMin = 50 * time.Millisecond
	resubMax = 500 * time.Millisecond
)

// Option configures a Store in New.
type Option func(*Store) error

// invalid returns an error wrapping ErrInvalidConfig that names the
// option and its value: "redisfleet: invalid config: WithRetention(0s):
// must be positive".
func invalid(option string, value any, why string) error {
	return fmt.Errorf("%w: %s(%v): %s", ErrInvalidConfig, option, value, why)
}

// WithPrefix sets the namespace of the keys: every key is "{prefix}:…", with
// the braces, so that in a Redis Cluster all of them hash to one slot and
// the scripts can touch them together. The default is DefaultPrefix.
func WithPrefix(prefix string) Option {
	return func(s *Store) error {
		if prefix == "" || strings.ContainsAny(prefix, "{}") {
			return invalid("WithPrefix", fmt.Sprintf("%q", prefix), "must be non-empty and free of braces")
		}
		s.prefix = prefix
		return nil
	}
}

// WithRetention sets how long an expired heartbeat is kept (and listed as
// vanished) before it is deleted. The default is DefaultRetention.
func WithRetention(d time.Duration) Option {
	return func(s *Store) error {
		if d <= 0 {
			return invalid("WithRetention", d, "must be positive")
		}
		s.retention = d
		return nil
	}
}

// WithHealthCheck sets how long a subscription may stay silent before the
// driver pings it; a ping unanswered for as long again drops the
// connection and subscribes anew. The default is DefaultHealthCheck.
func WithHealthCheck(d time.Duration) Option {
	return func(s *Store) error {
		if d <= 0 {
			return invalid("WithHealthCheck", d, "must be positive")
		}
		s.health = d
		return nil
	}
}

// Store is a fleet.Store on Redis. Keys, for prefix P:
//
//	{P}:epoch      string  random id of the store's lifetime, set by the first publish that finds none
//	{P}:version    string  INCR counter: the head's version
//	{P}:records    hash    record key → "version seconds microseconds value" (time by the server's TIME)
//	{P}:hb         hash    instance id → heartbeat JSON
//	{P}:hb:expiry  zset    instance id → expiry in server milliseconds
//	{P}:counts:G   hash    instance id → "seq value": fleet.GuardStore's counts under name G
//	{P}:leases     hash    lease name → "expiry-milliseconds holder"
//	{P}:history:G  list    fleet.HistoryStore's history of gate G, oldest first, the last fleet.MaxHistory entries
//	{P}:changed    channel a bare "changed" after every publish
//
// A publish is one Lua script (set the epoch if missing, INCR the version,
// HSET the record, PUBLISH), so it is atomic and two publishers never share
// a version. A read is one script too, so a snapshot is consistent.
// Use a client that honors context deadlines (redis.Options'
// ContextTimeoutEnabled) so that fleet's per-call timeout cuts a hung call
// short; otherwise the client's read timeout does.
type Store struct {
	c         redis.UniversalClient
	prefix    string
	retention time.Duration
	health    time.Duration

	kEpoch, kVersion, kRecords, kHB, kHBExpiry, kLeases, channel string
}

var (
	_ fleet.HistoryStore  = (*Store)(nil)
	_ fleet.CountsDeleter = (*Store)(nil)
)

// New returns a Store that uses client, which stays the caller's to
// configure (addresses, TLS, ACLs, Sentinel, Cluster) and to close. A nil
// option is skipped.
func New(client redis.UniversalClient, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidConfig)
	}
	s := &Store{c: client, prefix: DefaultPrefix, retention: DefaultRetention, health: DefaultHealthCheck}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	ns := "{" + s.prefix + "}:"
	s.kEpoch, s.kVersion, s.kRecords = ns+"epoch", ns+"version", ns+"records"
	s.kHB, s.kHBExpiry, s.channel = ns+"hb", ns+"hb:expiry", ns+"changed"
	s.kLeases = ns + "leases"
	return s, nil
}

// Pattern is the pattern (for SCAN MATCH) of every key the store uses, and
// of its channel.
func (s *Store) Pattern() string { return "{" + s.prefix + "}:*" }

func (s *Store) countsKey(name string) string  { return "{" + s.prefix + "}:counts:" + name }
func (s *Store) historyKey(gate string) string { return "{" + s.prefix + "}:history:" + gate }

var publishScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local epoch = redis.call('GET', KEYS[1])
local v = redis.call('INCR', KEYS[2])
local t = redis.call('TIME')
redis.call('HSET', KEYS[3], ARGV[2], v .. ' ' .. t[1] .. ' ' .. t[2] .. ' ' .. ARGV[3])
redis.call('PUBLISH', ARGV[4], 'changed')
return {epoch, v}
`)

// Publish implements fleet.Store.
func (s *Store) Publish(ctx context.Context, key string, value []byte) (fleet.Head, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	res, err := publishScript.Run(ctx, s.c, []string{s.kEpoch, s.kVersion, s.kRecords},
		hex.EncodeToString(b[:]), key, value, s.channel).Slice()
	if err != nil {
		return fleet.Head{}, fmt.Errorf("redisfleet: publish: %w", err)
	}
	return parseHead(res)
}

var readScript = redis.NewScript(`
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), redis.call('HGETALL', KEYS[3])}
`)

// Read implements fleet.Store.
func (s *Store) Read(ctx context.Context) (fleet.Snapshot, error) {
	res, err := readScript.Run(ctx, s.c, []string{s.kEpoch, s.kVersion, s.kRecords}).Slice()
	if err != nil {
		return fleet.Snapshot{}, fmt.Errorf("redisfleet: read: %w", err)
	}
	return parseSnapshot(res)
}

// Subscribe implements fleet.Store. It keeps a subscription to the
// channel, pings it after every silence of the health-check interval, and
// subscribes anew (reporting fleet.Subscribed) whenever the connection
// drops or a ping goes unanswered.
func (s *Store) Subscribe(ctx context.Context, notify func(fleet.Event)) error {
	for n := 0; ; n++ {
		err := s.subscribeOnce(ctx, notify)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err // the next subscription reports itself through notify
		d := min(resubMin<<min(n, 8), resubMax)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if err == nil {
			n = -1
		}
	}
}

// subscribeOnce runs one subscription until it fails. It returns nil if the
// subscription had been confirmed, so the next one starts without delay
// growth.
func (s *Store) subscribeOnce(ctx context.Context, notify func(fleet.Event)) error {
	ps := s.c.Subscribe(ctx)
	defer ps.Close()
	// Close unblocks a receive when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	if err := ps.Subscribe(ctx, s.channel); err != nil {
		return err
	}
	confirmed, pinged := false, false
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.health)
		if err != nil {
			var ne interface{ Timeout() bool }
			if ctx.Err() == nil && !pinged && errors.As(err, &ne) && ne.Timeout() {
				pinged = true
				if err := ps.Ping(ctx); err != nil {
					return errOr(confirmed, err)
				}
				continue
			}
			return errOr(confirmed, err)
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == s.channel {
				confirmed = true
				notify(fleet.Subscribed)
			}
		case *redis.Message:
			notify(fleet.Changed)
		}
	}
}

func errOr(confirmed bool, err error) error {
	if confirmed {
		return nil
	}
	return err
}

var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]), 'LIMIT', 0, 1000)
for _, id in ipairs(old) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return {redis.call('GET', KEYS[3]), redis.call('GET', KEYS[4])}
`)

// Heartbeat implements fleet.Store. It also deletes heartbeats that expired
// longer ago than the retention.
func (s *Store) Heartbeat(ctx context.Context, id string, value []byte, ttl time.Duration) (fleet.Head, error) {
	res, err := heartbeatScript.Run(ctx, s.c, []string{s.kHB, s.kHBExpiry, s.kEpoch, s.kVersion},
		id, value, ttl.Milliseconds(), s.retention.Milliseconds()).Slice()
	if err != nil {
		return fleet.Head{}, fmt.Errorf("redisfleet: heartbeat: %w", err)
	}
	return parseHead(res)
}

var heartbeatsScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {tostring(now), redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES'), redis.call('HGETALL', KEYS[1])}
`)

// Heartbeats implements fleet.Store.
func (s *Store) Heartbeats(ctx context.Context) ([]fleet.Heartbeat, error) {
	res, err := heartbeatsScript.Run(ctx, s.c, []string{s.kHB, s.kHBExpiry}).Slice()
	if err != nil {
		return nil, fmt.Errorf("redisfleet: heartbeats: %w", err)
	}
	return parseHeartbeats(res)
}

var putCountsScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local seq = tonumber(string.match(cur, '^(%d+) '))
  if seq and seq >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
return 1
`)

// PutCounts implements fleet.GuardStore: one script compares the sequence
// and writes, in the hash of name.
func (s *Store) PutCounts(ctx context.Context, name, id string, seq uint64, value []byte) error {
	err := putCountsScript.Run(ctx, s.c, []string{s.countsKey(name)}, id, strconv.FormatUint(seq, 10), value).Err()
	if err != nil {
		return fmt.Errorf("redisfleet: put counts: %w", err)
	}
	return nil
}

// Counts implements fleet.GuardStore: it reads the hash of name alone.
func (s *Store) Counts(ctx context.Context, name string) (map[string][]byte, error) {
	all, err := s.c.HGetAll(ctx, s.countsKey(name)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisfleet: counts: %w", err)
	}
	out := make(map[string][]byte, len(all))
	for id, v := range all {
		_, value, ok := strings.Cut(v, " ")
		if !ok {
			return nil, fmt.Errorf("%w: counts of %q", ErrMalformed, id)
		}
		out[id] = []byte(value)
	}
	return out, nil
}

// DeleteCounts implements fleet.CountsDeleter: it deletes id's value and
// sequence from the hash of name.
func (s *Store) DeleteCounts(ctx context.Context, name, id string) error {
	if err := s.c.HDel(ctx, s.countsKey(name), id).Err(); err != nil {
		return fmt.Errorf("redisfleet: delete counts: %w", err)
	}
	return nil
}

var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local exp, holder = string.match(cur, '^(%d+) (.*)$')
  if holder ~= ARGV[2] and tonumber(exp) > now then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], (now + tonumber(ARGV[3])) .. ' ' .. ARGV[2])
return 1
`)

// Lease implements fleet.GuardStore: one script compares the holder and
// the expiry, by the server's clock, and sets them.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	n, err := leaseScript.Run(ctx, s.c, []string{s.kLeases}, name, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("redisfleet: lease: %w", err)
	}
	return n == 1, nil
}

var appendHistoryScript = redis.NewScript(`
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
return 1
`)

// AppendHistory implements fleet.HistoryStore: one script appends the entry
// and trims the list to the last fleet.MaxHistory.
func (s *Store) AppendHistory(ctx context.Context, name string, entry []byte) error {
	err := appendHistoryScript.Run(ctx, s.c, []string{s.historyKey(name)}, entry, fleet.MaxHistory).Err()
	if err != nil {
		return fmt.Errorf("redisfleet: append history: %w", err)
	}
	return nil
}

// History implements fleet.HistoryStore.
func (s *Store) History(ctx context.Context, name string) ([][]byte, error) {
	all, err := s.c.LRange(ctx, s.historyKey(name), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisfleet: history: %w", err)
	}
	out := make([][]byte, len(all))
	for i, e := range all {
		out[i] = []byte(e)
	}
	return out, nil
}

// parseHead decodes {epoch or nil, version or nil}.
func parseHead(res []any) (fleet.Head, error) {
	if len(res) < 2 {
		return fleet.Head{}, fmt.Errorf("%w: head of %d elements", ErrMalformed, len(res))
	}
	var h fleet.Head
	if res[0] != nil {
		e, ok := res[0].(string)
		if !ok || e == "" {
			return fleet.Head{}, fmt.Errorf("%w: epoch %v", ErrMalformed, res[0])
		}
		h.Epoch = e
	}
	switch v := res[1].(type) {
	case nil:
	case int64:
		if v < 0 {
			return fleet.Head{}, fmt.Errorf("%w: version %d", ErrMalformed, v)
		}
		h.Version = uint64(v)
	case string:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fleet.Head{}, fmt.Errorf("%w: version %q", ErrMalformed, v)
		}
		h.Version = n
	default:
		return fleet.Head{}, fmt.Errorf("%w: version %v", ErrMalformed, v)
	}
	return h, nil
}

func parseSnapshot(res []any) (fleet.Snapshot, error) {
	h, err := parseHead(res)
	if err != nil {
		return fleet.Snapshot{}, err
	}
	if len(res) != 3 {
		return fleet.Snapshot{}, fmt.Errorf("%w: snapshot of %d elements", ErrMalformed, len(res))
	}
	kv, ok := res[2].([]any)
	if !ok || len(kv)%2 != 0 {
		return fleet.Snapshot{}, fmt.Errorf("%w: records", ErrMalformed)
	}
	snap := fleet.Snapshot{Head: h, Records: make([]fleet.Record, 0, len(kv)/2)}
	for i := 0; i < len(kv); i += 2 {
		k, _ := kv[i].(string)
		v, _ := kv[i+1].(string)
		r, err := parseRecord(k, v)
		if err != nil {
			return fleet.Snapshot{}, err
		}
		snap.Records = append(snap.Records, r)
	}
	return snap, nil
}

// parseRecord decodes a field of the records hash:
// "version seconds microseconds value".
func parseRecord(key, field string) (fleet.Record, error) {
	parts := strings.SplitN(field, " ", 4)
	if len(parts) != 4 {
		return fleet.Record{}, fmt.Errorf("%w: record %q", ErrMalformed, key)
	}
	v, err1 := strconv.ParseUint(parts[0], 10, 64)
	sec, err2 := strconv.ParseInt(parts[1], 10, 64)
	usec, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || v == 0 || usec < 0 || usec >= 1e6 || sec < 0 {
		return fleet.Record{}, fmt.Errorf("%w: record %q header", ErrMalformed, key)
	}
	return fleet.Record{Key: key, Version: v, Value: []byte(parts[3]), Published: time.Unix(sec, usec*1000)}, nil
}

func parseHeartbeats(res []any) ([]fleet.Heartbeat, error) {
	if len(res) != 3 {
		return nil, fmt.Errorf("%w: heartbeats of %d elements", ErrMalformed, len(res))
	}
	nowStr, _ := res[0].(string)
	now, err := strconv.ParseInt(nowStr, 10, 64)
	exp, ok1 := res[1].([]any)
	kv, ok2 := res[2].([]any)
	if err != nil || !ok1 || !ok2 || len(exp)%2 != 0 || len(kv)%2 != 0 {
		return nil, fmt.Errorf("%w: heartbeats", ErrMalformed)
	}
	expiry := make(map[string]int64, len(exp)/2)
	for i := 0; i < len(exp); i += 2 {
		id, _ := exp[i].(string)
		sc, _ := exp[i+1].(string)
		ms, err := strconv.ParseFloat(sc, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: heartbeat expiry %q", ErrMalformed, sc)
		}
		expiry[id] = int64(ms)
	}
	hs := make([]fleet.Heartbeat, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		id, _ := kv[i].(string)
		val, _ := kv[i+1].(string)
		e, ok := expiry[id]
		if !ok {
			continue // written between the two reads of a non-atomic client; next time
		}
		hs = append(hs, fleet.Heartbeat{ID: id, Value: []byte(val), TTL: time.Duration(e-now) * time.Millisecond})
	}
	return hs, nil
}

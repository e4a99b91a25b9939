package redisfleet

// Parsers of Redis replies, for the fuzz tests.
var (
	ParseSnapshot   = parseSnapshot
	ParseHeartbeats = parseHeartbeats
	ParseRecord     = parseRecord
)

package fleet

// Parsers of untrusted content, for the fuzz tests.
var (
	ParseRecord   = parseRecord
	ParseInstance = parseInstance
	ParseCache    = parseCache
	EncodeCache   = encodeCache
)

// MsgReadFailed is the log message of a failed store read.
const MsgReadFailed = msgReadFailed

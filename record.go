package eventsource

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Record is an event as a store keeps it: bytes and versions, never the
// user's Go types.
type Record struct {
	StreamID   string            // the stream the record belongs to
	Version    int64             // position in its stream, from 1; assigned by Append
	Position   uint64            // position in the global log, from 1; assigned by the store
	EventID    string            // unique in the store; when empty, Append generates one (a UUID; its form is the store's)
	Type       string            // event type name
	Codec      string            // name of the codec that wrote Data ("json", "gob", ...)
	Data       []byte            // the encoded event
	Metadata   map[string]string // string key/values, kept in clear for filtering
	RecordedAt time.Time         // when the store committed it; assigned by the store
}

// History is a list of records, sortable by version.
type History []Record

func (h History) Len() int           { return len(h) }
func (h History) Less(i, j int) bool { return h[i].Version < h[j].Version }
func (h History) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// ExpectedVersion is the version an append expects its stream to be at: an
// exact version N ≥ 0 (0 is NoStream), Any or StreamExists.
type ExpectedVersion int64

const (
	// NoStream expects the stream to have no events.
	NoStream ExpectedVersion = 0
	// Any skips the check.
	Any ExpectedVersion = -1
	// StreamExists expects the stream to have at least one event.
	StreamExists ExpectedVersion = -2
)

// Exact expects the stream to be at version v.
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

func (v ExpectedVersion) String() string {
	switch {
	case v == Any:
		return "any"
	case v == StreamExists:
		return "stream-exists"
	case v == NoStream:
		return "no-stream"
	default:
		return strconv.FormatInt(int64(v), 10)
	}
}

// Matches reports whether a stream at version actual satisfies v.
func (v ExpectedVersion) Matches(actual int64) bool {
	switch {
	case v == Any:
		return true
	case v == StreamExists:
		return actual > 0
	default:
		return int64(v) == actual
	}
}

// AppendResult says where an append's records landed. For an idempotent
// retry it names the original positions.
type AppendResult struct {
	StreamID      string
	FirstVersion  int64  // version of the first appended record
	LastVersion   int64  // the stream's version after the append
	FirstPosition uint64 // global position of the first appended record
	LastPosition  uint64 // global position of the last appended record
}

// The lengths of a record's identifiers, rules of the record format that
// every store keeps to, and two sizes the stores start from. What a store
// accepts in one append differs from store to store: each declares its own
// Limits, and PortableLimits are what all of them accept.
const (
	MaxStreamIDLength = 255     // bytes
	MaxTypeLength     = 255     // bytes, of a type or codec name
	MaxEventIDLength  = 128     // bytes
	MaxMetadataKey    = 255     // bytes
	DefaultMaxData    = 1 << 20 // bytes of Data per record: the stores' default (DynamoDB's is 256 KiB, NATS takes what fits a message)
	MaxRecordsPerCall = 1 << 16 // the most records any store takes in one append
)

// ValidateStreamID reports why id cannot name a stream, wrapping
// ErrInvalidStreamID (and ErrTooLarge for an ID over MaxStreamIDLength), or
// nil.
func ValidateStreamID(id string) error {
	const most = MaxStreamIDLength
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidStreamID)
	case len(id) > most:
		return fmt.Errorf("%w: %w: %d bytes, at most %d", ErrInvalidStreamID, ErrTooLarge, len(id), most)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidStreamID, id)
	case strings.IndexByte(id, 0) >= 0:
		return fmt.Errorf("%w: %q holds a NUL byte", ErrInvalidStreamID, id)
	}
	return nil
}

func validText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

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

// Limits every store enforces, so that a record valid on one is valid on all.
const (
	MaxStreamIDLength = 255     // bytes
	MaxTypeLength     = 255     // bytes
	MaxEventIDLength  = 128     // bytes
	MaxMetadataKey    = 255     // bytes
	DefaultMaxData    = 1 << 20 // bytes of Data per record, unless a store is configured otherwise
	MaxRecordsPerCall = 1 << 16 // records in one append
)

// ValidateStreamID reports why id cannot name a stream, wrapping
// ErrInvalidStreamID, or nil.
func ValidateStreamID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidStreamID)
	case len(id) > MaxStreamIDLength:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidStreamID, len(id), MaxStreamIDLength)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidStreamID, id)
	case strings.IndexByte(id, 0) >= 0:
		return fmt.Errorf("%w: %q holds a NUL byte", ErrInvalidStreamID, id)
	}
	return nil
}

func validText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// ValidateAppend checks an append's arguments the way every store must, and
// fills in missing event IDs in place. maxData is the largest Data a record
// may have (DefaultMaxData when ≤ 0). Errors wrap ErrInvalidStreamID,
// ErrInvalidEvent or ErrTooLarge.
func ValidateAppend(stream string, expected ExpectedVersion, records []Record, maxData int) error {
	if err := ValidateStreamID(stream); err != nil {
		return err
	}
	if expected < StreamExists {
		return fmt.Errorf("%w: expected version %d", ErrInvalidEvent, int64(expected))
	}
	if len(records) == 0 {
		return fmt.Errorf("%w: stream %q: no records to append", ErrNoEventsProduced, stream)
	}
	if len(records) > MaxRecordsPerCall {
		return fmt.Errorf("%w: %d records in one append, at most %d", ErrTooLarge, len(records), MaxRecordsPerCall)
	}
	if maxData <= 0 {
		maxData = DefaultMaxData
	}
	for i := range records {
		r := &records[i]
		switch {
		case r.StreamID != "" && r.StreamID != stream:
			return fmt.Errorf("%w: record %d names stream %q, appending to %q", ErrInvalidEvent, i, r.StreamID, stream)
		case r.Type == "" || len(r.Type) > MaxTypeLength || !validText(r.Type):
			return fmt.Errorf("%w: record %d: type name must be 1..%d bytes of UTF-8 without NUL", ErrInvalidEvent, i, MaxTypeLength)
		case len(r.Codec) > MaxTypeLength || !validText(r.Codec):
			return fmt.Errorf("%w: record %d: bad codec name", ErrInvalidEvent, i)
		case len(r.EventID) > MaxEventIDLength || !validText(r.EventID):
			return fmt.Errorf("%w: record %d: event id must be at most %d bytes of UTF-8 without NUL", ErrInvalidEvent, i, MaxEventIDLength)
		case len(r.Data) > maxData:
			return fmt.Errorf("%w: record %d of stream %q: %d bytes of data, at most %d", ErrTooLarge, i, stream, len(r.Data), maxData)
		}
		for k, v := range r.Metadata {
			if k == "" || len(k) > MaxMetadataKey || !validText(k) || !validText(v) {
				return fmt.Errorf("%w: record %d: metadata keys must be 1..%d bytes and keys and values UTF-8 without NUL", ErrInvalidEvent, i, MaxMetadataKey)
			}
		}
		if r.EventID == "" {
			r.EventID = NewEventID()
		}
	}
	if len(records) > 1 {
		seen := make(map[string]struct{}, len(records))
		for i := range records {
			if _, dup := seen[records[i].EventID]; dup {
				return fmt.Errorf("%w: %q appears twice in one append", ErrDuplicateEvent, records[i].EventID)
			}
			seen[records[i].EventID] = struct{}{}
		}
	}
	return nil
}

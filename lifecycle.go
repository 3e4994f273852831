package eventsource

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Stream lifecycle, as KurrentDB defines it: metadata per stream, rules that
// retire old records (truncate before a version, keep at most N, keep for at
// most a duration), soft and hard deletes, and an explicit scavenge that
// reclaims the space.
//
// Retiring is logical and immediate: from the moment the write that sets a
// rule commits, ReadStream and ReadAll (and ListStreams, for a deleted
// stream) stop returning what it retires, on every store and in every
// process. The records stay where they are until Scavenge removes them; no
// store removes them by surprise. Positions are never reused, and a retired
// record's event ID stays taken until it is scavenged.

// StreamMetadata is what a stream's metadata holds: its retention rules and
// the user's own values. The zero value sets no rule.
type StreamMetadata struct {
	// TruncateBefore retires the records with a lower version (0: none).
	TruncateBefore int64
	// MaxCount keeps only the newest MaxCount records (0: no limit): each
	// append retires, in its own transaction, what falls out of the window.
	MaxCount int64
	// MaxAge retires the records recorded longer ago than MaxAge (0: no
	// limit). It is checked when a record is read, against the store's
	// clock (the one that stamps RecordedAt: the database's on PostgreSQL
	// and MySQL, the process's elsewhere).
	MaxAge time.Duration
	// Values are the user's own key/values (for example an owner or a
	// retention class); the store keeps them and never reads them.
	Values map[string]string
}

// IsZero reports whether md sets no rule and no value.
func (md StreamMetadata) IsZero() bool {
	return md.TruncateBefore == 0 && md.MaxCount == 0 && md.MaxAge == 0 && len(md.Values) == 0
}

// StreamLifecycle is an optional Store capability: stream metadata,
// retention rules, soft deletes (StreamDeleter) and hard deletes.
//
// A stream's metadata has its own version, 0 until it is first written,
// and is written with an expected metadata version like an append: NoStream
// (never written), Exact(n) or Any. A mismatch is a *ConcurrencyError with
// Metadata set. A stream need not have events to have metadata.
//
// DeleteStream is a soft delete: it sets TruncateBefore to the stream's
// version + 1 (a metadata write), so the stream disappears from ReadStream,
// ReadAll and ListStreams. Appending to it again continues its version
// numbers: NoStream, like Exact(its last version), accepts a soft-deleted
// stream, and the next record is its last version + 1.
//
// TombstoneStream is a hard delete: the stream can never be written again.
// Appends, metadata reads and writes and deletes get a
// *StreamDeletedError, and so does a ReadStream of it; ReadAll and ListStreams no longer return it.
// Both deletes remove the stream's snapshots.
type StreamLifecycle interface {
	StreamDeleter
	// StreamMetadata returns stream's metadata and metadata version (the
	// zero StreamMetadata and 0 when never written).
	StreamMetadata(ctx context.Context, stream string) (StreamMetadata, int64, error)
	// SetStreamMetadata replaces stream's metadata when its metadata
	// version matches expected, and returns the new metadata version.
	SetStreamMetadata(ctx context.Context, stream string, expected ExpectedVersion, md StreamMetadata) (int64, error)
	// TombstoneStream hard-deletes stream if it is at the expected version
	// (NoStream tombstones a name that has no events).
	TombstoneStream(ctx context.Context, stream string, expected ExpectedVersion) error
}

// Scavenger is an optional Store capability: reclaiming the space of the
// records that retention rules and deletes retired. Nothing else removes
// them.
type Scavenger interface {
	// Scavenge removes retired records physically, stream by stream in
	// stream ID order, each stream in its own transaction, and returns what
	// it did. It is resumable: cancelled, it returns the result so far with
	// the context's error, and ScavengeOptions.After = result.Last goes on
	// from there. Running it again is harmless. What it removes was already
	// invisible, so readers see no change.
	Scavenge(ctx context.Context, opts ScavengeOptions) (ScavengeResult, error)
}

// ScavengeOptions tunes a Scavenge.
type ScavengeOptions struct {
	// After resumes a scavenge: streams up to and including this ID are
	// skipped.
	After string
	// Progress, if set, is called after each stream is done.
	Progress func(ScavengeResult)
}

// ScavengeResult reports a scavenge's progress.
type ScavengeResult struct {
	Streams int    // streams examined (those with a rule or a delete)
	Removed int64  // records removed
	Last    string // the last stream done
}

// ErrStreamDeleted: the stream was hard-deleted (TombstoneStream). Returned
// as a *StreamDeletedError.
var ErrStreamDeleted = errors.New("eventsource: stream deleted")

// StreamDeletedError reports a write to, or a read of, a hard-deleted
// stream. It matches ErrStreamDeleted.
type StreamDeletedError struct {
	Stream string
}

func (e *StreamDeletedError) Error() string {
	return fmt.Sprintf("eventsource: stream %q is deleted for good (tombstoned)", e.Stream)
}

// Unwrap makes errors.Is(err, ErrStreamDeleted) true.
func (e *StreamDeletedError) Unwrap() error { return ErrStreamDeleted }

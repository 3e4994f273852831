package storekit

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/eventsource-go/eventsource"
)

// Stream lifecycle (eventsource.StreamLifecycle), written once for every
// store: what a stream's rules make visible, what NoStream means for a
// soft-deleted stream, and the checks on metadata before it is written.

// MaxStreamMetadataSize bounds a stream's metadata in its JSON form
// (EncodeStreamMetadata), so that every store can keep it in one row, item
// or message.
const MaxStreamMetadataSize = 16 << 10

// ValidateStreamMetadata checks md before a store writes it: rules are not
// negative, value keys are not empty, keys and values are UTF-8 without NUL,
// and the encoded form fits MaxStreamMetadataSize. The error matches
// eventsource.ErrInvalidStreamMetadata.
func ValidateStreamMetadata(stream string, md eventsource.StreamMetadata) error {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: stream %q: %s", eventsource.ErrInvalidStreamMetadata, stream, fmt.Sprintf(format, args...))
	}
	switch {
	case md.TruncateBefore < 0:
		return bad("TruncateBefore %d is negative", md.TruncateBefore)
	case md.MaxCount < 0:
		return bad("MaxCount %d is negative", md.MaxCount)
	case md.MaxAge < 0:
		return bad("MaxAge %s is negative", md.MaxAge)
	}
	for k, v := range md.Values {
		switch {
		case k == "":
			return bad("a value has an empty key")
		case !validText(k) || !validText(v):
			return bad("value %q is not UTF-8 text without NUL", k)
		}
	}
	if b, _ := EncodeStreamMetadata(md); len(b) > MaxStreamMetadataSize {
		return bad("%d bytes encoded, more than %d", len(b), MaxStreamMetadataSize)
	}
	return nil
}

// streamMetadataJSON is the stored form of eventsource.StreamMetadata.
type streamMetadataJSON struct {
	TruncateBefore int64             `json:"truncateBefore,omitempty"`
	MaxCount       int64             `json:"maxCount,omitempty"`
	MaxAgeNanos    int64             `json:"maxAgeNanos,omitempty"`
	Values         map[string]string `json:"values,omitempty"`
}

// EncodeStreamMetadata is the JSON form stores keep metadata in when they
// keep it as one document ({"truncateBefore":…,"maxCount":…,
// "maxAgeNanos":…,"values":{…}}, zero fields left out).
func EncodeStreamMetadata(md eventsource.StreamMetadata) ([]byte, error) {
	return json.Marshal(streamMetadataJSON{md.TruncateBefore, md.MaxCount, int64(md.MaxAge), md.Values})
}

// DecodeStreamMetadata reads what EncodeStreamMetadata wrote; empty input
// is the zero metadata. The error matches eventsource.ErrCorruptData.
func DecodeStreamMetadata(stream string, b []byte) (eventsource.StreamMetadata, error) {
	var j streamMetadataJSON
	if len(b) > 0 {
		if err := json.Unmarshal(b, &j); err != nil {
			return eventsource.StreamMetadata{}, fmt.Errorf("%w: metadata of stream %q: %v", eventsource.ErrCorruptData, stream, err)
		}
	}
	return eventsource.StreamMetadata{TruncateBefore: j.TruncateBefore, MaxCount: j.MaxCount, MaxAge: time.Duration(j.MaxAgeNanos), Values: j.Values}, nil
}

// Retention is the compact form of a stream's rules that its reads need:
// keep it beside the stream (a row, an item, a header) and update it, with
// Next, in the transaction of every write that moves it: a metadata write, a
// delete, and an append to a stream with MaxCount. Retiring is one-way: a
// rule lowered or removed later never brings back what it retired (a reader
// must not see records come and go with the timing of a scavenge).
type Retention struct {
	// Cut is the first visible version: the highest of TruncateBefore,
	// head-MaxCount+1 and 1 the stream has ever had; math.MaxInt64 for a
	// tombstoned stream.
	Cut int64
	// MaxAge retires records recorded longer ago (0: none).
	MaxAge time.Duration
	// Since retires records recorded before it (zero: none): what an
	// earlier MaxAge had retired when it was changed.
	Since time.Time
}

// Tombstoned reports whether r is a hard-deleted stream's.
func (r Retention) Tombstoned() bool { return r.Cut == math.MaxInt64 }

// IsZero reports whether r retires nothing (a stream with no rule).
func (r Retention) IsZero() bool { return r.Cut <= 1 && r.MaxAge == 0 && r.Since.IsZero() }

// Next is the retention after a write at now that leaves the stream at
// version head with metadata md: it keeps whatever r retired.
func (r Retention) Next(md eventsource.StreamMetadata, head int64, tombstoned bool, now time.Time) Retention {
	if tombstoned || r.Tombstoned() {
		return Retention{Cut: math.MaxInt64}
	}
	cut := max(r.Cut, md.TruncateBefore, 1)
	if md.MaxCount > 0 {
		cut = max(cut, head-md.MaxCount+1)
	}
	since := r.Since
	if old := r.Oldest(now); r.MaxAge != md.MaxAge && old.After(since) {
		since = old
	}
	return Retention{Cut: cut, MaxAge: md.MaxAge, Since: since}
}

// Visible reports whether a record at version, recorded at recordedAt, is
// still visible at now.
func (r Retention) Visible(version int64, recordedAt, now time.Time) bool {
	if version < r.Cut || recordedAt.Before(r.Since) {
		return false
	}
	return r.MaxAge <= 0 || !recordedAt.Before(now.Add(-r.MaxAge))
}

// Oldest is the recorded time before which r retires records at now (the
// zero time when it retires none by time).
func (r Retention) Oldest(now time.Time) time.Time {
	if r.MaxAge <= 0 {
		return r.Since
	}
	if o := now.Add(-r.MaxAge); o.After(r.Since) {
		return o
	}
	return r.Since
}

// Expect is what an append's expected version means for a stream at
// version head with retention r: NoStream accepts a soft-deleted stream
// (one whose versions are all below the cut), so it means
// Exact(min(head, r.Cut-1)) when the cut is above 1. Check the version with
// the result, and tell an idempotent retry with it (ExactRetry: a retried
// first append after a soft delete finds its records right after the cut);
// report a conflict with the caller's expected version. On a stream that is
// truncated but not deleted, the result is not its version, so NoStream
// still conflicts.
func (r Retention) Expect(expected eventsource.ExpectedVersion, head int64) eventsource.ExpectedVersion {
	if expected == eventsource.NoStream && r.Cut > 1 && !r.Tombstoned() {
		return eventsource.Exact(min(head, r.Cut-1))
	}
	return expected
}

// Absent reports whether a stream at version head with retention r is
// absent for ListStreams and DeleteStream: it has no events, it is
// soft-deleted (every version it has is below the cut), or it is
// tombstoned. ListStreams leaves it out; DeleteStream of it is ErrNotFound
// (a *StreamDeletedError when tombstoned).
func (r Retention) Absent(head int64) bool { return head == 0 || r.Cut > head }

// SoftDelete returns the metadata a soft delete of a stream at version head
// writes: md with TruncateBefore = head + 1.
func SoftDelete(md eventsource.StreamMetadata, head int64) eventsource.StreamMetadata {
	md.TruncateBefore = head + 1
	return md
}

// Tombstoned is the error for a write to, or a stream read of, a
// hard-deleted stream.
func Tombstoned(stream string) error { return &eventsource.StreamDeletedError{Stream: stream} }

// ValidateExpected checks the expected version of a lifecycle write
// (DeleteStream, TombstoneStream, SetStreamMetadata) before anything is
// sent: Exact(n ≥ 0), Any or StreamExists. The error matches
// eventsource.ErrInvalidEvent, as ValidateAppend's.
func ValidateExpected(expected eventsource.ExpectedVersion) error {
	if expected < eventsource.StreamExists {
		return fmt.Errorf("%w: expected version %d", eventsource.ErrInvalidEvent, int64(expected))
	}
	return nil
}

// CheckDelete is what a soft delete of a stream at version head with
// retention r refuses: an absent stream (ErrNotFound) and a version other
// than expected (a *ConcurrencyError). A tombstoned stream is refused
// before, with Tombstoned.
func (r Retention) CheckDelete(stream string, expected eventsource.ExpectedVersion, head int64) error {
	if r.Absent(head) {
		return fmt.Errorf("%w: stream %q", eventsource.ErrNotFound, stream)
	}
	if !expected.Matches(head) {
		return &eventsource.ConcurrencyError{Stream: stream, Expected: expected, Actual: head}
	}
	return nil
}

// CheckTombstone is what a hard delete of a stream at version head with
// retention r refuses: a version other than expected, NoStream accepting a
// soft-deleted stream (Expect).
func (r Retention) CheckTombstone(stream string, expected eventsource.ExpectedVersion, head int64) error {
	if !r.Expect(expected, head).Matches(head) {
		return &eventsource.ConcurrencyError{Stream: stream, Expected: expected, Actual: head}
	}
	return nil
}

// CheckMetadataVersion is what a metadata write refuses: a metadata
// version other than expected (a *ConcurrencyError with Metadata set).
func CheckMetadataVersion(stream string, expected eventsource.ExpectedVersion, metaVersion int64) error {
	if !expected.Matches(metaVersion) {
		return &eventsource.ConcurrencyError{Stream: stream, Expected: expected, Actual: metaVersion, Metadata: true}
	}
	return nil
}

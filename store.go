package eventsource

import (
	"context"
	"iter"
	"strings"
)

// Store is the contract every backend implements. A store knows bytes and
// versions, never the user's Go types. All methods are safe for concurrent use.
type Store interface {
	// Append adds records to the end of stream, atomically: all of them or
	// none. Versions (expected+1, expected+2, …), global positions and
	// recorded times are assigned by the store; empty event IDs are filled in.
	// If the stream is not at the expected version the result is a
	// *ConcurrencyError and nothing is stored, unless the records' event IDs
	// are exactly the ones already stored right after the expected version:
	// then the append is an idempotent retry and returns the original result.
	Append(ctx context.Context, stream string, expected ExpectedVersion, records []Record) (AppendResult, error)

	// ReadStream yields the records of stream with from ≤ version ≤ to, in
	// version order; to ≤ 0 means to the end. It fetches in batches, so a
	// long stream is read in bounded memory. A stream with no events yields
	// nothing (no error).
	ReadStream(ctx context.Context, stream string, from, to int64) iter.Seq2[Record, error]

	// ReadAll yields the committed records of the global log whose position
	// is ≥ from and that match filter, in position order, fetching in batches.
	// Positions only grow: once a record at position P has been yielded, no
	// record committed later will have a position ≤ P.
	ReadAll(ctx context.Context, from uint64, filter Filter) iter.Seq2[Record, error]
}

// Filter selects records of the global log. Empty fields select everything.
// Streams and StreamPrefixes together select streams (a record matches if its
// stream is listed or starts with one of the prefixes); that selection, Types
// and Metadata must all match.
type Filter struct {
	Streams        []string          // exact stream IDs, any of them
	StreamPrefixes []string          // stream ID prefixes (categories such as "user-"), any of them
	Types          []string          // event type names, any of them
	Metadata       map[string]string // every key present with this value
}

// IsZero reports whether f selects everything.
func (f Filter) IsZero() bool {
	return len(f.Streams) == 0 && len(f.StreamPrefixes) == 0 && len(f.Types) == 0 && len(f.Metadata) == 0
}

// Match reports whether r is selected by f. Stores that cannot push a filter
// down to their database use it, and it defines the semantics those that can
// must keep.
func (f Filter) Match(r *Record) bool {
	if len(f.Streams) > 0 || len(f.StreamPrefixes) > 0 {
		ok := false
		for _, s := range f.Streams {
			if r.StreamID == s {
				ok = true
				break
			}
		}
		for _, p := range f.StreamPrefixes {
			if !ok && strings.HasPrefix(r.StreamID, p) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.Types) > 0 {
		ok := false
		for _, t := range f.Types {
			if r.Type == t {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for k, v := range f.Metadata {
		if got, ok := r.Metadata[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// As finds capability C (an optional interface such as Notifier, HeadReader
// or SnapshotStore) on s, or on the store s wraps: a decorator (tracing,
// metrics) implements Store and Unwrap() Store, and As looks through it,
// as errors.As looks through wrapped errors. Code that asks a Store for a
// capability asks through As.
func As[C any](s Store) (C, bool) {
	for s != nil {
		if c, ok := s.(C); ok {
			return c, true
		}
		u, ok := s.(interface{ Unwrap() Store })
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	var zero C
	return zero, false
}

// Notifier is an optional Store capability: a live signal of new events.
type Notifier interface {
	// Notify returns a channel that receives a value soon after records are
	// committed (signals may be coalesced: one value can stand for many
	// appends). The channel is closed when ctx is done. A receiver reads the
	// global log from its last position to find what is new.
	Notify(ctx context.Context) (<-chan struct{}, error)
}

// HeadReader is an optional Store capability: the position of the newest
// committed record in the global log, 0 when empty. Retired, deleted and
// scavenged records count: Head never goes back.
type HeadReader interface {
	Head(ctx context.Context) (uint64, error)
}

// StreamInfo describes one stream.
type StreamInfo struct {
	StreamID string
	Version  int64
}

// StreamLister is an optional Store capability: the streams it holds, in
// stream ID order, those starting with prefix ("" for all).
type StreamLister interface {
	ListStreams(ctx context.Context, prefix string) iter.Seq2[StreamInfo, error]
}

// StreamDeleter is an optional Store capability: deleting a stream. The
// delete is soft (see StreamLifecycle, which every store of this module
// implements): the stream's records disappear from ReadStream, ReadAll and
// ListStreams at once, positions are never reused, and appending to it again
// continues its version numbers. Deleting a stream that has no visible
// records is ErrNotFound. Its space is reclaimed by Scavenger.Scavenge.
type StreamDeleter interface {
	DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error
}

// ReadStreamAll reads a whole stream into a History. Meant for tests and
// small streams; use ReadStream to iterate a long one.
func ReadStreamAll(ctx context.Context, s Store, stream string) (History, error) {
	var h History
	for r, err := range s.ReadStream(ctx, stream, 1, 0) {
		if err != nil {
			return h, err
		}
		h = append(h, r)
	}
	return h, nil
}

// Reserver is an optional Store capability: unique values (an email
// address, a user name) reserved for one owner with a conditional write, so
// that two aggregates cannot both claim them. Reservations live beside the
// events but are not events: release one when the owner gives the value up.
type Reserver interface {
	// Reserve claims value in scope (for example "email") for owner. It is
	// idempotent for the same owner; another owner's reservation is a
	// *ReservedError.
	Reserve(ctx context.Context, scope, value, owner string) error
	// Release gives value up. Releasing a value owner does not hold is a
	// *ReservedError (held by another) or ErrNotFound (free).
	Release(ctx context.Context, scope, value, owner string) error
	// Owner returns who holds value, or ErrNotFound.
	Owner(ctx context.Context, scope, value string) (string, error)
}

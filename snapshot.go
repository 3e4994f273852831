package eventsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Snapshot is an aggregate's state at a version of its stream, so that a
// load reads only the events after it.
type Snapshot struct {
	StreamID   string
	Version    int64     // the last event the state includes
	Position   uint64    // that event's position in the global log (0: unknown)
	Schema     int       // the aggregate's snapshot schema version (SnapshotPolicy.Schema)
	Data       []byte    // the encoded state
	RecordedAt time.Time // set by the store
}

// SnapshotStore is an optional Store capability: snapshots kept beside the
// streams. SaveSnapshot keeps s (replacing one at the same version);
// LoadSnapshot returns the newest snapshot of stream at or below atMost (0:
// the newest of all), ErrNotFound when there is none. Deleting a stream
// deletes its snapshots.
type SnapshotStore interface {
	SaveSnapshot(ctx context.Context, s Snapshot) error
	LoadSnapshot(ctx context.Context, stream string, atMost int64) (Snapshot, error)
}

// SnapshotPolicy says when a repository snapshots an aggregate and how.
// Snapshots are taken after Apply saves (which holds the new state, so it
// costs one write and no read), and by Repository.Snapshot; a failed one is
// logged and never fails the save. With Every, a Load that finds the newest
// snapshot Every or more events behind takes one too (one write): so events
// saved with Save, which has no state at hand, and snapshots that failed
// are covered at the next load. The aggregate's state is its exported
// fields, JSON-encoded.
type SnapshotPolicy struct {
	// Every snapshots when a save crosses a multiple of Every events.
	Every int64
	// When, if set, is asked after each save instead.
	When func(agg Aggregate, version int64) bool
	// Schema is the version of the aggregate's state layout: bump it when
	// the struct changes, and snapshots of other versions are ignored (the
	// aggregate is rebuilt from its events, and a new snapshot written).
	Schema int
	// Codec encodes the state: when nil, the repository's registry codec if
	// that encrypts (package encryption), else JSON. With the encrypting
	// codec snapshots are encrypted under the aggregate's subject like its
	// events: a shredded subject's snapshots are unreadable, and the
	// aggregate loads (or fails) from its events. The codec sees a value
	// whose AggregateID is the aggregate's ID.
	Codec Codec
}

// snapshotState is what a snapshot's codec encodes: the aggregate, as an
// Event whose AggregateID is the aggregate's, so that an encrypting codec
// takes the aggregate's key.
type snapshotState struct {
	id      string
	version int64
	State   any
}

func (s *snapshotState) AggregateID() string { return s.id }
func (s *snapshotState) EventVersion() int64 { return s.version }
func (s *snapshotState) EventAt() time.Time  { return time.Time{} }

// encodeState encodes agg with the policy's codec.
func (r *Repository[T]) encodeState(ctx context.Context, id string, version int64, agg T) ([]byte, error) {
	if r.snap.Codec == nil {
		return json.Marshal(agg)
	}
	v := &snapshotState{id: id, version: version, State: agg}
	if cc, ok := r.snap.Codec.(ContextCodec); ok {
		return cc.MarshalContext(ctx, v)
	}
	return r.snap.Codec.Marshal(v)
}

// decodeState decodes a snapshot's data into agg; ok is false when there
// is nothing to decode (a shredded subject read with redaction).
func (r *Repository[T]) decodeState(ctx context.Context, id string, data []byte, agg T) (bool, error) {
	if r.snap.Codec == nil {
		return true, json.Unmarshal(data, agg)
	}
	c := r.snap.Codec
	if oc, isOpen := c.(OpenCodec); isOpen {
		plain, inner, err := oc.Open(ctx, data)
		if err != nil || plain == nil {
			return false, err
		}
		c, data = inner, plain
	}
	return true, c.Unmarshal(data, &snapshotState{id: id, State: agg})
}

// WithSnapshots makes the repository load from, and write, snapshots in a
// store that implements SnapshotStore (ErrInvalidConfig otherwise).
func WithSnapshots(p SnapshotPolicy) Option {
	return func(c *config) {
		if p.Schema < 1 {
			p.Schema = 1
		}
		c.snapshots = &p
	}
}

// snapshotter returns the store's snapshots when the repository uses them.
func (r *Repository[T]) snapshotter() SnapshotStore {
	if r.snap == nil {
		return nil
	}
	ss, _ := As[SnapshotStore](r.store)
	return ss
}

// fromSnapshot returns the aggregate restored from the newest usable
// snapshot at or below to (0: any), its version and position; 0 when there
// is none.
// A snapshot of another schema, or one that does not decode, is ignored
// (stale is true then: a fresh one should be written).
func (r *Repository[T]) fromSnapshot(ctx context.Context, stream string, to int64) (agg T, version int64, position uint64, stale bool) {
	ss := r.snapshotter()
	if ss == nil {
		return agg, 0, 0, false
	}
	s, err := ss.LoadSnapshot(ctx, stream, to)
	switch {
	case errors.Is(err, ErrNotFound):
		return agg, 0, 0, false
	case err != nil:
		r.log.WarnContext(ctx, "eventsource: snapshot unreadable, loading from events", slog.String("stream", stream), slog.Any("error", err))
		return agg, 0, 0, false
	case s.Schema != r.snap.Schema:
		r.snapshotFallbacks.Add(1)
		return agg, 0, 0, true
	}
	agg = r.New()
	ok, err := r.decodeState(ctx, strings.TrimPrefix(stream, r.prefix), s.Data, agg)
	if err != nil || !ok {
		r.snapshotFallbacks.Add(1)
		if err != nil {
			r.log.WarnContext(ctx, "eventsource: snapshot unusable, loading from events", slog.String("stream", stream), slog.Any("error", err))
		}
		var zero T
		return zero, 0, 0, false
	}
	return agg, s.Version, s.Position, false
}

// due reports whether a save that took the aggregate from before to after
// should snapshot it.
func (r *Repository[T]) due(agg T, before, after int64) bool {
	switch {
	case r.snap == nil:
		return false
	case r.snap.When != nil:
		return r.snap.When(agg, after)
	case r.snap.Every > 0:
		return after/r.snap.Every > before/r.snap.Every
	}
	return false
}

// behind reports whether a load that started from a snapshot at version
// from (0: none) and reached version should snapshot: an Every policy whose
// newest snapshot is Every or more events old.
func (r *Repository[T]) behind(from, version int64) bool {
	return r.snap != nil && r.snap.When == nil && r.snap.Every > 0 && version-from >= r.snap.Every
}

// writeSnapshot stores agg as the snapshot of stream at version; a failure
// is logged, not returned.
func (r *Repository[T]) writeSnapshot(ctx context.Context, stream string, version int64, position uint64, agg T) {
	ss := r.snapshotter()
	if ss == nil {
		return
	}
	data, err := r.encodeState(ctx, strings.TrimPrefix(stream, r.prefix), version, agg)
	if err == nil {
		err = ss.SaveSnapshot(ctx, Snapshot{StreamID: stream, Version: version, Position: position, Schema: r.snap.Schema, Data: data})
	}
	if err != nil {
		r.log.WarnContext(ctx, "eventsource: snapshot not written", slog.String("stream", stream), slog.Int64("version", version), slog.Any("error", err))
	}
}

// Snapshot writes a snapshot of aggregate id as it is now, whatever the
// policy says (WithSnapshots is required, for the schema).
func (r *Repository[T]) Snapshot(ctx context.Context, id string) error {
	if r.err != nil {
		return r.err
	}
	ss := r.snapshotter()
	if ss == nil {
		return fmt.Errorf("%w: Snapshot needs WithSnapshots and a store that implements SnapshotStore", ErrInvalidConfig)
	}
	agg, version, position, err := r.loadAt(ctx, id, 0)
	if err != nil {
		return err
	}
	data, err := r.encodeState(ctx, id, version, agg)
	if err != nil {
		return fmt.Errorf("eventsource: snapshot of %q: %w", id, err)
	}
	return ss.SaveSnapshot(ctx, Snapshot{StreamID: r.StreamID(id), Version: version, Position: position, Schema: r.snap.Schema, Data: data})
}

// SnapshotFallbacks is how many loads found a snapshot they could not use
// (another schema, undecodable, shredded) and replayed the events instead.
func (r *Repository[T]) SnapshotFallbacks() int64 { return r.snapshotFallbacks.Load() }

package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// SaveSnapshot implements eventsource.SnapshotStore: one row per stream and
// version in {prefix}snapshots, replaced when written again. DeleteStream
// and TombstoneStream delete a stream's snapshots in their transaction.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventsource.Snapshot) error {
	if err := storekit.ValidateSnapshot(snap, s.Limits()); err != nil {
		return err
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	data := snap.Data
	if data == nil {
		data = []byte{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+ident(s.cfg, "snapshots")+` (stream_id, version, position, schema, data) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (stream_id, version) DO UPDATE SET position = excluded.position, schema = excluded.schema, data = excluded.data, recorded_at = now()`,
		snap.StreamID, snap.Version, int64(snap.Position), snap.Schema, data)
	return wrap(ctx, err, "save snapshot of %q at %d", snap.StreamID, snap.Version)
}

// LoadSnapshot implements eventsource.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string, atMost int64) (eventsource.Snapshot, error) {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return eventsource.Snapshot{}, err
	}
	if err := s.ready(ctx); err != nil {
		return eventsource.Snapshot{}, err
	}
	snap := eventsource.Snapshot{StreamID: stream}
	var pos int64
	err := s.pool.QueryRow(ctx, `SELECT version, position, schema, data, recorded_at FROM `+ident(s.cfg, "snapshots")+`
		WHERE stream_id = $1 AND ($2 <= 0 OR version <= $2) ORDER BY version DESC LIMIT 1`, stream, atMost).
		Scan(&snap.Version, &pos, &snap.Schema, &snap.Data, &snap.RecordedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventsource.Snapshot{}, storekit.NoSnapshot(stream, atMost)
	}
	if err != nil {
		return eventsource.Snapshot{}, wrap(ctx, err, "load snapshot of %q", stream)
	}
	snap.RecordedAt, snap.Position = snap.RecordedAt.UTC(), uint64(pos)
	return snap, nil
}

var _ eventsource.SnapshotStore = (*Store)(nil)

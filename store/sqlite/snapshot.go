package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// SaveSnapshot implements eventsource.SnapshotStore: one row per stream and
// version, in the {prefix}snapshots table, replaced when written again.
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
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO `+s.prefix+`snapshots (stream_id, version, position, schema, data, recorded_at) VALUES (?, ?, ?, ?, ?, ?)`,
		snap.StreamID, snap.Version, int64(snap.Position), snap.Schema, data, time.Now().UnixNano())
	return s.wrap("save snapshot", err)
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
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT version, position, schema, data, recorded_at FROM `+s.prefix+`snapshots
		WHERE stream_id = ? AND (? <= 0 OR version <= ?) ORDER BY version DESC LIMIT 1`, stream, atMost, atMost).
		Scan(&snap.Version, &snap.Position, &snap.Schema, &snap.Data, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return eventsource.Snapshot{}, storekit.NoSnapshot(stream, atMost)
	}
	if err != nil {
		return eventsource.Snapshot{}, s.wrap("load snapshot", err)
	}
	snap.RecordedAt = time.Unix(0, at).UTC()
	return snap, nil
}

package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// SaveSnapshot implements eventsource.SnapshotStore: one row per stream and
// version in {prefix}snapshots, replaced when written again. DeleteStream
// and TombstoneStream delete the stream's snapshots (Scavenge has nothing
// left to remove there).
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
	_, err := s.db.ExecContext(ctx, "INSERT INTO `"+s.cfg.prefix+"snapshots` (stream_id, version, position, `schema`, data, recorded_at) VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6)) "+
		"ON DUPLICATE KEY UPDATE position = VALUES(position), `schema` = VALUES(`schema`), data = VALUES(data), recorded_at = VALUES(recorded_at)",
		snap.StreamID, snap.Version, snap.Position, snap.Schema, data)
	if err != nil {
		return fmt.Errorf("mysql: save snapshot of %q at %d: %w", snap.StreamID, snap.Version, err)
	}
	return nil
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
	err := s.db.QueryRowContext(ctx, "SELECT version, position, `schema`, data, recorded_at FROM `"+s.cfg.prefix+"snapshots` "+
		"WHERE stream_id = ? AND (? <= 0 OR version <= ?) ORDER BY version DESC LIMIT 1", stream, atMost, atMost).
		Scan(&snap.Version, &snap.Position, &snap.Schema, &snap.Data, utcTime{&snap.RecordedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return eventsource.Snapshot{}, storekit.NoSnapshot(stream, atMost)
	}
	if err != nil {
		return eventsource.Snapshot{}, fmt.Errorf("mysql: load snapshot of %q: %w", stream, err)
	}
	return snap, nil
}

var _ eventsource.SnapshotStore = (*Store)(nil)

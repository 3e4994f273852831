package sqlite

import (
	"context"
	"fmt"

	"github.com/eventsource-go/eventsource"
)

// DeleteStream implements eventsource.StreamDeleter; the stream's
// snapshots go with it.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected eventsource.ExpectedVersion) error {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return err
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("delete stream", err)
	}
	defer tx.Rollback()
	var current int64
	if err := tx.QueryRowContext(ctx, s.q.version, stream).Scan(&current); err != nil {
		return s.wrap("delete stream", err)
	}
	if current == 0 {
		return fmt.Errorf("%w: stream %q", eventsource.ErrNotFound, stream)
	}
	if !expected.Matches(current) {
		return &eventsource.ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
	}
	if _, err := tx.ExecContext(ctx, s.q.deleteEvents, stream); err != nil {
		return s.wrap("delete stream", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+s.prefix+`snapshots WHERE stream_id = ?`, stream); err != nil {
		return s.wrap("delete stream", err)
	}
	return s.wrap("delete stream", tx.Commit())
}

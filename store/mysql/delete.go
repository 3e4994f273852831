package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/eventsource-go/eventsource"
)

// DeleteStream implements eventsource.StreamDeleter: it removes the
// stream's records and its version, if the stream is at expected
// (eventsource.ErrNotFound when it has no records). Positions are never
// reused; appending to the stream again starts at version 1.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected eventsource.ExpectedVersion) error {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return err
	}
	if expected < eventsource.StreamExists {
		return fmt.Errorf("%w: expected version %d", eventsource.ErrInvalidEvent, int64(expected))
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := s.deleteTx(ctx, stream, expected)
		if err == nil || errors.Is(err, eventsource.ErrNotFound) || errors.Is(err, eventsource.ErrConcurrency) {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("mysql: delete stream %q: %w", stream, cerr)
		}
		if !retryable(err) || attempt >= maxAttempts {
			return fmt.Errorf("mysql: delete stream %q: %w", stream, err)
		}
		if err := sleep(ctx, attempt); err != nil {
			return fmt.Errorf("mysql: delete stream %q: %w", stream, err)
		}
	}
}

func (s *Store) deleteTx(ctx context.Context, stream string, expected eventsource.ExpectedVersion) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var v int64
	if err := tx.QueryRowContext(ctx, s.q.lockStream, stream).Scan(&v); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: stream %q", eventsource.ErrNotFound, stream)
		}
		return err
	}
	if !expected.Matches(v) {
		return &eventsource.ConcurrencyError{Stream: stream, Expected: expected, Actual: v}
	}
	if _, err := tx.ExecContext(ctx, s.q.deleteEvents, stream); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q.deleteStream, stream); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM `"+s.cfg.prefix+"snapshots` WHERE stream_id = ?", stream); err != nil {
		return err
	}
	return tx.Commit()
}

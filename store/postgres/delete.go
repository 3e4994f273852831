package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/eventsource-go/eventsource"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DeleteStream implements eventsource.StreamDeleter: in one transaction it
// locks the stream against appends (the advisory lock that appends in READ
// COMMITTED hold shared, exclusively, and the streams row FOR UPDATE, which
// appends in REPEATABLE READ or SERIALIZABLE hold FOR KEY SHARE), so that it
// waits for appends in flight and holds off new ones, checks the expected
// version, and deletes the stream's events and the row. Positions are never
// reused, and appending to the stream again starts at version 1. A missing
// stream is eventsource.ErrNotFound.
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
	// Read committed, whatever the database's default: the version is read
	// by a statement after the lock, so it sees every append that held it.
	opts := pgx.TxOptions{IsoLevel: pgx.ReadCommitted}
	err := pgx.BeginTxFunc(ctx, s.pool, opts, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.q.lockDelete, stream); err != nil {
			return wrap(ctx, err, "delete stream %q: lock", stream)
		}
		tag, err := tx.Exec(ctx, s.q.lockStream, stream)
		switch {
		case err != nil:
			return wrap(ctx, err, "delete stream %q", stream)
		case tag.RowsAffected() == 0:
			return fmt.Errorf("%w: stream %q", eventsource.ErrNotFound, stream)
		}
		var version int64
		if err := tx.QueryRow(ctx, s.q.streamVersion, stream).Scan(&version); err != nil {
			return wrap(ctx, err, "delete stream %q", stream)
		}
		if !expected.Matches(version) {
			return &eventsource.ConcurrencyError{Stream: stream, Expected: expected, Actual: version}
		}
		if _, err := tx.Exec(ctx, s.q.deleteEvents, stream); err != nil {
			return wrap(ctx, err, "delete stream %q: events", stream)
		}
		if _, err := tx.Exec(ctx, s.q.deleteStream, stream); err != nil {
			return wrap(ctx, err, "delete stream %q", stream)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+ident(s.cfg, "snapshots")+` WHERE stream_id = $1`, stream); err != nil {
			return wrap(ctx, err, "delete stream %q: snapshots", stream)
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !strings.HasPrefix(err.Error(), "postgres: ") { // from begin or commit
		err = wrap(ctx, err, "delete stream %q", stream)
	}
	return err
}

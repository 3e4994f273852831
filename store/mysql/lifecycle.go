package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// A stream's metadata and retention live in its {prefix}stream_rules row,
// written in one transaction with the stream's row locked (see the package
// documentation, "Stream lifecycle").

// streamRules is a stream's row and rules as a lifecycle write reads them,
// under lock.
type streamRules struct {
	head        int64 // the stream's version
	ruled       bool  // it has a stream_rules row
	md          eventsource.StreamMetadata
	metaVersion int64
	ret         storekit.Retention
	now         time.Time // the server's clock
}

// rulesChange is what a lifecycle write makes of a stream's rules.
type rulesChange struct {
	md            eventsource.StreamMetadata
	tombstone     bool
	dropSnapshots bool
}

// DeleteStream implements eventsource.StreamDeleter: a soft delete (see
// eventsource.StreamLifecycle). It writes the stream's metadata with
// TruncateBefore = its version + 1 and deletes its snapshots, in one
// transaction; the records stay in {prefix}events, hidden from every read,
// until Scavenge removes them. A stream with no visible records is
// eventsource.ErrNotFound; a tombstoned one a *StreamDeletedError.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected eventsource.ExpectedVersion) error {
	_, err := s.lifecycle(ctx, "delete", stream, expected, func(st *streamRules) (rulesChange, error) {
		if err := st.ret.CheckDelete(stream, expected, st.head); err != nil {
			return rulesChange{}, err
		}
		return rulesChange{md: storekit.SoftDelete(st.md, st.head), dropSnapshots: true}, nil
	})
	return err
}

// TombstoneStream implements eventsource.StreamLifecycle: the stream's cut
// becomes math.MaxInt64, so every later append, metadata write and stream
// read of it is a *StreamDeletedError, and its snapshots are deleted, in
// one transaction. expected is checked as an append's (NoStream accepts a
// name without events, or a soft-deleted stream).
func (s *Store) TombstoneStream(ctx context.Context, stream string, expected eventsource.ExpectedVersion) error {
	_, err := s.lifecycle(ctx, "tombstone", stream, expected, func(st *streamRules) (rulesChange, error) {
		if err := st.ret.CheckTombstone(stream, expected, st.head); err != nil {
			return rulesChange{}, err
		}
		return rulesChange{md: st.md, tombstone: true, dropSnapshots: true}, nil
	})
	return err
}

// SetStreamMetadata implements eventsource.StreamLifecycle: it replaces the
// stream's metadata if its metadata version is expected, and moves its
// retention in the same transaction (storekit.Retention.Next).
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, expected eventsource.ExpectedVersion, md eventsource.StreamMetadata) (int64, error) {
	if err := storekit.ValidateStreamMetadata(stream, md); err != nil {
		return 0, err
	}
	return s.lifecycle(ctx, "set metadata of", stream, expected, func(st *streamRules) (rulesChange, error) {
		if err := storekit.CheckMetadataVersion(stream, expected, st.metaVersion); err != nil {
			return rulesChange{}, err
		}
		return rulesChange{md: md}, nil
	})
}

// StreamMetadata implements eventsource.StreamLifecycle: one primary-key
// read of {prefix}stream_rules.
func (s *Store) StreamMetadata(ctx context.Context, stream string) (eventsource.StreamMetadata, int64, error) {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	if err := s.ready(ctx); err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	var meta []byte
	var version, cut int64
	err := s.db.QueryRowContext(ctx, s.q.readRules, stream).Scan(&meta, &version, &cut)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return eventsource.StreamMetadata{}, 0, nil
	case err != nil:
		return eventsource.StreamMetadata{}, 0, fmt.Errorf("mysql: read metadata of stream %q: %w", stream, err)
	case (storekit.Retention{Cut: cut}).Tombstoned():
		return eventsource.StreamMetadata{}, 0, storekit.Tombstoned(stream)
	}
	md, err := storekit.DecodeStreamMetadata(stream, meta)
	if err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	return md, version, nil
}

// lifecycle runs one lifecycle write of stream in a transaction: change
// decides from the stream's rules, read under lock, what to write. It
// returns the new metadata version.
func (s *Store) lifecycle(ctx context.Context, what, stream string, expected eventsource.ExpectedVersion, change func(*streamRules) (rulesChange, error)) (int64, error) {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return 0, err
	}
	if err := storekit.ValidateExpected(expected); err != nil {
		return 0, err
	}
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	var version int64
	err := s.inTx(ctx, func(tx *sql.Tx) (err error) {
		version, err = s.lifecycleIn(ctx, tx, stream, change)
		return err
	})
	switch {
	case err == nil || errors.Is(err, eventsource.ErrNotFound) || errors.Is(err, eventsource.ErrConcurrency) || errors.Is(err, eventsource.ErrStreamDeleted):
		return version, err
	case ctx.Err() != nil:
		return 0, fmt.Errorf("mysql: %s stream %q: %w", what, stream, ctx.Err())
	}
	return 0, fmt.Errorf("mysql: %s stream %q: %w", what, stream, err)
}

// lifecycleIn is one attempt of lifecycle, in tx.
func (s *Store) lifecycleIn(ctx context.Context, tx *sql.Tx, stream string, change func(*streamRules) (rulesChange, error)) (int64, error) {
	st, err := s.lockRules(ctx, tx, stream)
	if err != nil {
		return 0, err
	}
	if st.ret.Tombstoned() {
		return 0, storekit.Tombstoned(stream)
	}
	c, err := change(&st)
	if err != nil {
		return 0, err
	}
	ret := st.ret.Next(c.md, st.head, c.tombstone, st.now)
	meta, err := storekit.EncodeStreamMetadata(c.md)
	if err != nil {
		return 0, err
	}
	args := []any{string(meta), st.metaVersion + 1, ret.Cut, int64(ret.MaxAge), sinceParam(ret.Since), stream}
	if st.ruled {
		_, err = tx.ExecContext(ctx, s.q.updateRules, args...)
	} else if _, err = tx.ExecContext(ctx, s.q.insertRules, args...); err == nil {
		_, err = tx.ExecContext(ctx, s.q.markRuled, stream)
	}
	if err != nil {
		return 0, err
	}
	if c.dropSnapshots {
		if _, err := tx.ExecContext(ctx, s.q.deleteSnapshots, stream); err != nil {
			return 0, err
		}
	}
	return st.metaVersion + 1, nil
}

// inTx runs fn in a transaction and commits it, and runs it again after a
// deadlock or a lock wait timeout, up to maxAttempts times, as Append does.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.txOnce(ctx, fn)
		if err == nil || !retryable(err) || attempt >= maxAttempts || ctx.Err() != nil {
			return err
		}
		if err := sleep(ctx, attempt); err != nil {
			return err
		}
	}
}

func (s *Store) txOnce(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// lockRules locks the stream's row, making it at version 0 if the stream
// has none (an upsert: no gap lock, so lifecycle writes of new names do not
// deadlock each other), and then its rules row if it has one: the order an
// append takes them in. A write that does not commit leaves no row behind.
func (s *Store) lockRules(ctx context.Context, tx *sql.Tx, stream string) (streamRules, error) {
	var st streamRules
	if _, err := tx.ExecContext(ctx, s.q.claimStream, stream); err != nil {
		return st, err
	}
	if err := tx.QueryRowContext(ctx, s.q.lockStream, stream).Scan(&st.head, &st.ruled, utcTime{&st.now}); err != nil {
		return st, err
	}
	if !st.ruled {
		return st, nil
	}
	var meta []byte
	var maxAge int64
	if err := tx.QueryRowContext(ctx, s.q.lockRules, stream).Scan(&meta, &st.metaVersion, &st.ret.Cut, &maxAge, utcTime{&st.ret.Since}); err != nil {
		return st, fmt.Errorf("read the stream's rules: %w", err)
	}
	st.ret.MaxAge = time.Duration(maxAge)
	md, err := storekit.DecodeStreamMetadata(stream, meta)
	st.md = md
	return st, err
}

// sinceParam is Retention.Since as a DATETIME(6) parameter, in UTC (whatever
// the DSN's loc), rounded up to the microsecond: records are recorded in
// whole microseconds, so one is before t exactly when it is before t rounded
// up. The zero time is NULL.
func sinceParam(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	c := t.Truncate(time.Microsecond)
	if c.Before(t) {
		c = c.Add(time.Microsecond)
	}
	return c.UTC().Format("2006-01-02 15:04:05.000000")
}

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// rule is what the store knows of a stream's lifecycle: its row in
// {prefix}stream_rules, if it has one, and its version.
type rule struct {
	found       bool // the stream has a rules row
	meta        string
	metaVersion int64
	maxCount    int64
	ret         storekit.Retention
	head        int64 // the stream's version
}

// scanRule reads the row of the query rule (two point lookups).
func scanRule(row *sql.Row) (rule, error) {
	var r rule
	var maxVersion int64
	var meta sql.NullString
	var mv, count, cut, age, since, head sql.NullInt64
	if err := row.Scan(&maxVersion, &meta, &mv, &count, &cut, &age, &since, &head); err != nil {
		return r, err
	}
	r.head = maxVersion
	if !meta.Valid {
		return r, nil
	}
	r.found, r.meta, r.metaVersion, r.maxCount = true, meta.String, mv.Int64, count.Int64
	r.ret = storekit.Retention{Cut: cut.Int64, MaxAge: time.Duration(age.Int64), Since: fromNanos(since.Int64)}
	r.head = max(maxVersion, head.Int64)
	return r, nil
}

// metadata decodes the rule's metadata document.
func (r rule) metadata(stream string) (eventsource.StreamMetadata, error) {
	return storekit.DecodeStreamMetadata(stream, []byte(r.meta))
}

// nanos is t in Unix nanoseconds, 0 for the zero time (no bound).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// lifecycle runs fn on stream's rule in one write transaction, refusing a
// tombstoned stream. fn's errors are returned as they are.
func (s *Store) lifecycle(ctx context.Context, op, stream string, fn func(tx *sql.Tx, r rule) error) error {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(op, err)
	}
	defer tx.Rollback()
	r, err := scanRule(tx.QueryRowContext(ctx, s.q.rule, stream))
	if err != nil {
		return s.wrap(op, err)
	}
	if r.ret.Tombstoned() {
		return storekit.Tombstoned(stream)
	}
	if err := fn(tx, r); err != nil {
		return err
	}
	return s.wrap(op, tx.Commit())
}

// setMetadata writes md as stream's metadata (its next metadata version)
// and moves its retention, in tx; a delete also removes its snapshots.
func (s *Store) setMetadata(ctx context.Context, tx *sql.Tx, op, stream string, r rule, md eventsource.StreamMetadata, del, tombstone bool) (int64, error) {
	doc, err := storekit.EncodeStreamMetadata(md)
	if err != nil {
		return 0, fmt.Errorf("%w: stream %q: %w", eventsource.ErrInvalidStreamMetadata, stream, err)
	}
	ret := r.ret.Next(md, r.head, tombstone, time.Now())
	mv := r.metaVersion + 1
	if _, err := tx.ExecContext(ctx, s.q.writeRule, stream, string(doc), mv, md.MaxCount, ret.Cut, int64(ret.MaxAge), nanos(ret.Since), r.head); err != nil {
		return 0, s.wrap(op, err)
	}
	if del {
		if _, err := tx.ExecContext(ctx, s.q.deleteSnapshots, stream); err != nil {
			return 0, s.wrap(op, err)
		}
	}
	return mv, nil
}

// DeleteStream implements eventsource.StreamDeleter: a soft delete (see
// eventsource.StreamLifecycle). It writes the stream's rules row
// (TruncateBefore = its version + 1) and removes its snapshots in one
// transaction; its records stay in the events table, hidden, until
// Scavenge.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected eventsource.ExpectedVersion) error {
	if err := storekit.ValidateExpected(expected); err != nil {
		return err
	}
	return s.lifecycle(ctx, "delete stream", stream, func(tx *sql.Tx, r rule) error {
		if err := r.ret.CheckDelete(stream, expected, r.head); err != nil {
			return err
		}
		md, err := r.metadata(stream)
		if err != nil {
			return err
		}
		_, err = s.setMetadata(ctx, tx, "delete stream", stream, r, storekit.SoftDelete(md, r.head), true, false)
		return err
	})
}

// TombstoneStream implements eventsource.StreamLifecycle: the stream's
// rules row is marked (cut = math.MaxInt64), for good, and its snapshots
// removed, in one transaction.
func (s *Store) TombstoneStream(ctx context.Context, stream string, expected eventsource.ExpectedVersion) error {
	if err := storekit.ValidateExpected(expected); err != nil {
		return err
	}
	return s.lifecycle(ctx, "tombstone stream", stream, func(tx *sql.Tx, r rule) error {
		if err := r.ret.CheckTombstone(stream, expected, r.head); err != nil {
			return err
		}
		md, err := r.metadata(stream)
		if err != nil {
			return err
		}
		_, err = s.setMetadata(ctx, tx, "tombstone stream", stream, r, md, true, true)
		return err
	})
}

// StreamMetadata implements eventsource.StreamLifecycle.
func (s *Store) StreamMetadata(ctx context.Context, stream string) (eventsource.StreamMetadata, int64, error) {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	if err := s.ready(ctx); err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	r, err := scanRule(s.db.QueryRowContext(ctx, s.q.rule, stream))
	if err != nil {
		return eventsource.StreamMetadata{}, 0, s.wrap("stream metadata", err)
	}
	if r.ret.Tombstoned() {
		return eventsource.StreamMetadata{}, 0, storekit.Tombstoned(stream)
	}
	md, err := r.metadata(stream)
	if err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	return md, r.metaVersion, nil
}

// SetStreamMetadata implements eventsource.StreamLifecycle: the metadata
// and the retention it moves are one row, written in one transaction, so
// its rules hold for every reader from its commit.
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, expected eventsource.ExpectedVersion, md eventsource.StreamMetadata) (int64, error) {
	if err := storekit.ValidateExpected(expected); err != nil {
		return 0, err
	}
	if err := storekit.ValidateStreamMetadata(stream, md); err != nil {
		return 0, err
	}
	var version int64
	err := s.lifecycle(ctx, "set stream metadata", stream, func(tx *sql.Tx, r rule) error {
		if err := storekit.CheckMetadataVersion(stream, expected, r.metaVersion); err != nil {
			return err
		}
		var err error
		version, err = s.setMetadata(ctx, tx, "set stream metadata", stream, r, md, false, false)
		return err
	})
	return version, err
}

// Scavenge implements eventsource.Scavenger: for each stream with a rules
// row that retires something, in stream ID order, it deletes the stream's
// retired rows from the events table in a transaction of its own (keeping
// the stream's version in its rules row). Their event IDs become free; the
// positions stay taken (AUTOINCREMENT).
func (s *Store) Scavenge(ctx context.Context, opts eventsource.ScavengeOptions) (eventsource.ScavengeResult, error) {
	var res eventsource.ScavengeResult
	if err := s.ready(ctx); err != nil {
		return res, err
	}
	after := opts.After
	for {
		ids, err := s.ruledStreams(ctx, after)
		if err != nil {
			return res, err
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			n, err := s.scavenge(ctx, id)
			if err != nil {
				return res, err
			}
			res.Streams++
			res.Removed += n
			res.Last = id
			if opts.Progress != nil {
				opts.Progress(res)
			}
		}
		if len(ids) < s.batch {
			return res, nil
		}
		after = ids[len(ids)-1]
	}
}

// ruledStreams returns a page of the streams, after after, whose rules
// retire something.
func (s *Store) ruledStreams(ctx context.Context, after string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q.ruled, after, s.batch)
	if err != nil {
		return nil, s.wrap("scavenge", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap("scavenge", err)
		}
		ids = append(ids, id)
	}
	return ids, s.wrap("scavenge", rows.Err())
}

// scavenge deletes stream's retired rows in one transaction and returns how
// many.
func (s *Store) scavenge(ctx context.Context, stream string) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.wrap("scavenge", err)
	}
	defer tx.Rollback()
	r, err := scanRule(tx.QueryRowContext(ctx, s.q.rule, stream))
	if err != nil {
		return 0, s.wrap("scavenge", err)
	}
	out, err := tx.ExecContext(ctx, s.q.scavenge, stream, r.ret.Cut, nanos(r.ret.Oldest(time.Now())))
	if err != nil {
		return 0, s.wrap("scavenge", err)
	}
	n, err := out.RowsAffected()
	if err != nil {
		return 0, s.wrap("scavenge", err)
	}
	// Everything below the cut is gone now: the row keeps the head and,
	// without an age rule, becomes inert for ReadAll (migration 005).
	if _, err := tx.ExecContext(ctx, s.q.keepHead, stream, r.head); err != nil {
		return 0, s.wrap("scavenge", err)
	}
	return n, s.wrap("scavenge", tx.Commit())
}

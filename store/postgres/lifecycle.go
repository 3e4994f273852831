package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// codeTombstoned is the SQLSTATE {tombstoned} raises (migrations/005): an
// append to, or a stream read of, a tombstoned stream.
const codeTombstoned = "ZE001"

func isTombstoned(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == codeTombstoned
}

// streamState is what a lifecycle write reads of its stream, under its
// locks.
type streamState struct {
	md          eventsource.StreamMetadata
	metaVersion int64
	ruled       bool // the stream has a {retention} row
	ret         storekit.Retention
	head        int64
	now         time.Time // the database's clock, after the locks
}

// lifecycleWrite is what a lifecycle write changes: the stream's metadata
// (a new metadata version, and the retention moved with it), and whether
// its snapshots go.
type lifecycleWrite struct {
	md            eventsource.StreamMetadata
	tombstone     bool
	dropSnapshots bool
}

// lifecycle runs fn on stream's state and writes what it returns, in one
// READ COMMITTED transaction that first takes the locks appends conflict
// with: the advisory lock that appends in READ COMMITTED hold shared,
// exclusively, and the streams row FOR UPDATE, which appends in REPEATABLE
// READ or SERIALIZABLE hold FOR SHARE. So it waits for appends in flight,
// holds off new ones, and reads the stream's version after them. A
// tombstoned stream is refused before fn runs. It returns the new metadata
// version (0 when fn wrote nothing).
func (s *Store) lifecycle(ctx context.Context, stream, what string, fn func(*streamState) (*lifecycleWrite, error)) (int64, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	var version int64
	opts := pgx.TxOptions{IsoLevel: pgx.ReadCommitted}
	err := pgx.BeginTxFunc(ctx, s.pool, opts, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(s.q.lockStream, stream)
		b.Queue(s.q.lockRow, stream)
		b.Queue(s.q.streamState, stream)
		br := tx.SendBatch(ctx, b)
		st, err := readState(br, stream)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return wrap(ctx, err, "%s %q", what, stream)
		}
		if st.ret.Tombstoned() {
			return storekit.Tombstoned(stream)
		}
		w, err := fn(st)
		if err != nil || w == nil {
			return err
		}
		md, err := storekit.EncodeStreamMetadata(w.md)
		if err != nil {
			return fmt.Errorf("postgres: %s %q: %w", what, stream, err)
		}
		version = st.metaVersion + 1
		ret := st.ret.Next(w.md, st.head, w.tombstone, st.now)
		b = &pgx.Batch{}
		b.Queue(s.q.writeMeta, stream, string(md), version)
		if st.ruled || !ret.IsZero() || w.md.MaxCount > 0 {
			var since any // NULL for none
			if !ret.Since.IsZero() {
				since = ret.Since
			}
			b.Queue(s.q.writeRetention, stream, ret.Cut, int64(ret.MaxAge), since, w.md.MaxCount)
		}
		if w.dropSnapshots {
			b.Queue(s.q.deleteSnapshots, stream)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return wrap(ctx, err, "%s %q", what, stream)
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !strings.HasPrefix(err.Error(), "postgres: ") { // from begin or commit
		err = wrap(ctx, err, "%s %q", what, stream)
	}
	if err != nil {
		return 0, err
	}
	return version, nil
}

// readState reads the results of lockStream, lockRow and streamState.
func readState(br pgx.BatchResults, stream string) (*streamState, error) {
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	st := &streamState{}
	var meta []byte
	err := br.QueryRow().Scan(&meta, &st.metaVersion)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	var maxAge int64
	var since *time.Time
	if err := br.QueryRow().Scan(&st.ruled, &st.ret.Cut, &maxAge, &since, &st.head, &st.now); err != nil {
		return nil, err
	}
	st.ret.MaxAge = time.Duration(maxAge)
	if since != nil {
		st.ret.Since = *since
	}
	if st.md, err = storekit.DecodeStreamMetadata(stream, meta); err != nil {
		return nil, err
	}
	return st, nil
}

// DeleteStream implements eventsource.StreamDeleter: a soft delete (see
// eventsource.StreamLifecycle). Under the locks of a lifecycle write it
// checks the expected version against the stream's, writes the metadata
// storekit.SoftDelete returns (TruncateBefore its version + 1: the stream's
// row in {streams}, its cut in {retention}) and deletes its snapshots, in
// one transaction. Its records stay until Scavenge removes them; appending
// again continues its versions. A stream with no visible records is
// eventsource.ErrNotFound.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected eventsource.ExpectedVersion) error {
	if err := validateLifecycle(stream, expected); err != nil {
		return err
	}
	_, err := s.lifecycle(ctx, stream, "delete stream", func(st *streamState) (*lifecycleWrite, error) {
		if err := st.ret.CheckDelete(stream, expected, st.head); err != nil {
			return nil, err
		}
		return &lifecycleWrite{md: storekit.SoftDelete(st.md, st.head), dropSnapshots: true}, nil
	})
	return err
}

// TombstoneStream implements eventsource.StreamLifecycle: like
// DeleteStream, with the cut at math.MaxInt64, which appends, stream reads
// and lifecycle writes refuse. NoStream accepts a name with no events and
// a soft-deleted stream.
func (s *Store) TombstoneStream(ctx context.Context, stream string, expected eventsource.ExpectedVersion) error {
	if err := validateLifecycle(stream, expected); err != nil {
		return err
	}
	_, err := s.lifecycle(ctx, stream, "tombstone stream", func(st *streamState) (*lifecycleWrite, error) {
		if err := st.ret.CheckTombstone(stream, expected, st.head); err != nil {
			return nil, err
		}
		return &lifecycleWrite{md: st.md, tombstone: true, dropSnapshots: true}, nil
	})
	return err
}

// StreamMetadata implements eventsource.StreamLifecycle: the stream's row
// of {streams}, one read.
func (s *Store) StreamMetadata(ctx context.Context, stream string) (eventsource.StreamMetadata, int64, error) {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	if err := s.ready(ctx); err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	var meta []byte
	var version int64
	var ret storekit.Retention
	err := s.pool.QueryRow(ctx, s.q.streamMetadata, stream).Scan(&meta, &version, &ret.Cut)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return eventsource.StreamMetadata{}, 0, nil
	case err != nil:
		return eventsource.StreamMetadata{}, 0, wrap(ctx, err, "stream metadata of %q", stream)
	case ret.Tombstoned():
		return eventsource.StreamMetadata{}, 0, storekit.Tombstoned(stream)
	}
	md, err := storekit.DecodeStreamMetadata(stream, meta)
	if err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	return md, version, nil
}

// SetStreamMetadata implements eventsource.StreamLifecycle: under the locks
// of a lifecycle write, it checks the metadata version and writes the
// document to the stream's row and the retention it moves to {retention},
// in one transaction, so the rules hold for every reader from its commit.
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, expected eventsource.ExpectedVersion, md eventsource.StreamMetadata) (int64, error) {
	if err := storekit.ValidateStreamMetadata(stream, md); err != nil {
		return 0, err
	}
	if err := validateLifecycle(stream, expected); err != nil {
		return 0, err
	}
	return s.lifecycle(ctx, stream, "set metadata of", func(st *streamState) (*lifecycleWrite, error) {
		if err := storekit.CheckMetadataVersion(stream, expected, st.metaVersion); err != nil {
			return nil, err
		}
		return &lifecycleWrite{md: md}, nil
	})
}

func validateLifecycle(stream string, expected eventsource.ExpectedVersion) error {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return err
	}
	if err := storekit.ValidateExpected(expected); err != nil {
		return err
	}
	return nil
}

// Scavenge implements eventsource.Scavenger: for each stream with a
// non-zero retention in {retention}, in stream ID order after opts.After,
// one statement (its own transaction) deletes the records of {events} its
// rules retire and keeps the stream's version in its {retention} row. Their
// positions stay unused; their event IDs become free.
func (s *Store) Scavenge(ctx context.Context, opts eventsource.ScavengeOptions) (eventsource.ScavengeResult, error) {
	var res eventsource.ScavengeResult
	if err := s.ready(ctx); err != nil {
		return res, err
	}
	after := opts.After
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		rows, err := s.pool.Query(ctx, s.q.ruledStreams, after, s.cfg.batch)
		if err != nil {
			return res, wrap(ctx, err, "scavenge: list streams after %q", after)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return res, wrap(ctx, err, "scavenge: list streams after %q", after)
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			var n int64
			if err := s.pool.QueryRow(ctx, s.q.scavenge, id).Scan(&n); err != nil {
				return res, wrap(ctx, err, "scavenge stream %q", id)
			}
			res.Streams++
			res.Removed += n
			res.Last = id
			if opts.Progress != nil {
				opts.Progress(res)
			}
		}
		if len(ids) < s.cfg.batch {
			return res, nil
		}
		after = ids[len(ids)-1]
	}
}

var (
	_ eventsource.StreamLifecycle = (*Store)(nil)
	_ eventsource.Scavenger       = (*Store)(nil)
)

package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// Server error numbers the store acts on.
const (
	errDupKey      = 1062
	errLockTimeout = 1205
	errDeadlock    = 1213
)

// maxAttempts bounds the transactions one Append or DeleteStream runs when
// the server reports a deadlock or a lock wait timeout.
const maxAttempts = 5

// maxVisibilityWaits bounds the transactions one Append runs while the
// append before it is committed but not yet visible (see takePositions).
const maxVisibilityWaits = 50

var (
	// errTailUnknown: the log's last visible row is not the last position
	// handed out, either because the append that took it is not visible
	// yet or because its rows were deleted since. The precise check tells.
	errTailUnknown = errors.New("mysql: the last position handed out is not among the visible rows")
	// errNotVisible: the append that took the last position has committed
	// (its lock on the counter is free) but is not yet visible to a new
	// read view.
	errNotVisible = errors.New("mysql: the previous append is not visible yet")
)

func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func retryable(err error) bool {
	n := errNumber(err)
	return n == errDeadlock || n == errLockTimeout
}

// conflict ends an append transaction that cannot go on: the stream is not at
// the expected version, or an event ID is stored already (duplicate). Append
// then decides between an idempotent retry, ErrDuplicateEvent and a
// *ConcurrencyError. expected is the caller's expected version as the
// stream's rules read it (storekit.Retention.Expect), for the retry check.
type conflict struct {
	duplicate bool
	actual    int64
	expected  eventsource.ExpectedVersion
}

func (c *conflict) Error() string { return "mysql: append conflict" }

// eventRow is a record ready for the INSERT.
type eventRow struct {
	rec      *eventsource.Record
	metadata any // JSON text, or nil for SQL NULL
	size     int
}

// encodeMetadata is the one JSON encoding of metadata, used both to store it
// and to filter on it: MariaDB compares JSON strings as written, so equal
// maps must encode to equal bytes (encoding/json sorts keys).
func encodeMetadata(m map[string]string) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// Append implements eventsource.Store. The records are written in one
// transaction: all of them or none. A conflict is a *ConcurrencyError (or
// the original result, for a retry with the same event IDs at the same
// expected version); a deadlock or lock wait timeout reported by the server
// is retried a few times. If the connection breaks during COMMIT the outcome
// is unknown: retrying the append with the same event IDs is safe.
func (s *Store) Append(ctx context.Context, stream string, expected eventsource.ExpectedVersion, records []eventsource.Record) (eventsource.AppendResult, error) {
	if err := s.ready(ctx); err != nil {
		return eventsource.AppendResult{}, err
	}
	if err := s.catchUp(ctx); err != nil {
		return eventsource.AppendResult{}, err
	}
	recs := make([]eventsource.Record, len(records))
	copy(recs, records)
	if err := storekit.ValidateAppend(stream, expected, recs, s.Limits()); err != nil {
		return eventsource.AppendResult{}, err
	}
	rows := make([]eventRow, len(recs))
	for i := range recs {
		r := &recs[i]
		rows[i] = eventRow{rec: r, size: len(stream) + len(r.EventID) + len(r.Type) + len(r.Codec) + len(r.Data) + 64}
		if len(r.Metadata) > 0 {
			js, err := encodeMetadata(r.Metadata)
			if err != nil {
				return eventsource.AppendResult{}, fmt.Errorf("%w: record %d: metadata: %v", eventsource.ErrInvalidEvent, i, err)
			}
			rows[i].metadata = js
			rows[i].size += len(js)
		}
		if r.Data == nil {
			r.Data = []byte{}
		}
	}

	precise, waits := false, 0
	for attempt := 1; ; attempt++ {
		res, err := s.appendTx(ctx, stream, expected, rows, precise)
		if err == nil {
			s.signal.Fire()
			return res, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return eventsource.AppendResult{}, fmt.Errorf("mysql: append to stream %q: %w", stream, cerr)
		}
		var c *conflict
		var ipe *eventsource.InlineProjectionError
		switch {
		case errors.As(err, &ipe) && !(retryable(err) && attempt < maxAttempts):
			return eventsource.AppendResult{}, err
		case errors.Is(err, eventsource.ErrStreamDeleted):
			return eventsource.AppendResult{}, err
		case errors.Is(err, errTailUnknown):
			precise = true
			attempt--
			continue
		case errors.Is(err, errNotVisible) && waits < maxVisibilityWaits:
			waits++
			attempt--
		case errors.As(err, &c):
			res, done, err := s.retried(ctx, stream, c.expected, recs)
			if done || err != nil {
				return res, err
			}
			if !c.duplicate {
				return eventsource.AppendResult{}, &eventsource.ConcurrencyError{Stream: stream, Expected: expected, Actual: c.actual}
			}
			// A duplicate key whose owner is gone by now (scavenged): go again.
			if attempt >= maxAttempts {
				return eventsource.AppendResult{}, fmt.Errorf("%w: stream %q: duplicate key on append", eventsource.ErrDuplicateEvent, stream)
			}
		case retryable(err) && attempt < maxAttempts:
			s.log.DebugContext(ctx, "mysql: retrying append", "stream", stream, "attempt", attempt, "error", err)
		default:
			return eventsource.AppendResult{}, fmt.Errorf("mysql: append to stream %q (%d records): %w", stream, len(recs), err)
		}
		if err := sleep(ctx, attempt); err != nil {
			return eventsource.AppendResult{}, fmt.Errorf("mysql: append to stream %q: %w", stream, err)
		}
	}
}

// sleep backs off before another attempt: a few milliseconds, growing, with
// jitter so that two deadlocked transactions do not meet again.
func sleep(ctx context.Context, attempt int) error {
	return storekit.Sleep(ctx, time.Duration(attempt)*2*time.Millisecond+time.Duration(rand.IntN(3000))*time.Microsecond)
}

// appendTx runs one append transaction. Locks are taken in one order, the
// stream's row first and the position counter last, so appends cannot
// deadlock on each other; the counter, which every append needs, is held
// only for the INSERT of the events and the COMMIT.
func (s *Store) appendTx(ctx context.Context, stream string, expected eventsource.ExpectedVersion, rows []eventRow, precise bool) (res eventsource.AppendResult, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if s.onTx != nil {
		var id int64
		if err := tx.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			return res, err
		}
		s.onTx(id)
	}

	n := int64(len(rows))
	base, expected, err := s.advanceStream(ctx, tx, stream, expected, n)
	if err != nil {
		return res, err
	}
	first, last, err := s.takePositions(ctx, tx, n, precise)
	if err != nil {
		return res, err
	}
	if err := s.insertEvents(ctx, tx, stream, base, first, rows); err != nil {
		if errNumber(err) == errDupKey {
			return res, &conflict{duplicate: true, expected: expected}
		}
		return res, err
	}
	if err := s.applyInline(ctx, tx, stream, first, last); err != nil {
		return res, err
	}

	storekit.BeforeCommit(ctx)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := tx.Commit(); err != nil {
		return res, err
	}
	return eventsource.AppendResult{
		StreamID: stream, FirstVersion: base + 1, LastVersion: base + n,
		FirstPosition: first, LastPosition: last,
	}, nil
}

// advanceStream moves the stream's version on by n in its streams row, if
// the stream is at expected, and returns the version before the append and
// expected as the stream's rules read it. A stream at another version is a
// *conflict, a tombstoned one a *StreamDeletedError.
//
// A stream without rules (no metadata, never deleted) costs one statement,
// as it did before streams had rules: each statement refuses a row marked
// ruled (the Any upsert tells it by LAST_INSERT_ID(1), which an insert never
// reports), and such a row, like any refusal, goes to ruledAdvance.
func (s *Store) advanceStream(ctx context.Context, tx *sql.Tx, stream string, expected eventsource.ExpectedVersion, n int64) (base int64, resolved eventsource.ExpectedVersion, err error) {
	switch {
	case expected == eventsource.NoStream:
		if _, err := tx.ExecContext(ctx, s.q.insertStream, stream, n); err != nil {
			if errNumber(err) == errDupKey {
				return s.ruledAdvance(ctx, tx, stream, expected, n)
			}
			return 0, expected, err
		}
		return 0, expected, nil
	case expected == eventsource.Any:
		r, err := tx.ExecContext(ctx, s.q.upsertStream, stream, n, n)
		if err != nil {
			return 0, expected, err
		}
		// 2 rows affected: updated, and LAST_INSERT_ID holds the new
		// version (with or without clientFoundRows, since the version
		// changes). Otherwise the row was inserted (LAST_INSERT_ID 0) or
		// refused as ruled (LAST_INSERT_ID 1; 0 rows affected, or 1 with
		// clientFoundRows).
		affected, err := r.RowsAffected()
		if err != nil {
			return 0, expected, err
		}
		v, err := r.LastInsertId()
		if err != nil {
			return 0, expected, err
		}
		switch {
		case affected == 2:
			return v - n, expected, nil
		case v != 0:
			return s.ruledAdvance(ctx, tx, stream, expected, n)
		}
		return 0, expected, nil
	case expected == eventsource.StreamExists:
		r, err := tx.ExecContext(ctx, s.q.updateStreamExists, n, stream)
		if err != nil {
			return 0, expected, err
		}
		if affected, err := r.RowsAffected(); err != nil {
			return 0, expected, err
		} else if affected == 0 {
			return s.ruledAdvance(ctx, tx, stream, expected, n)
		}
		v, err := r.LastInsertId()
		if err != nil {
			return 0, expected, err
		}
		return v - n, expected, nil
	default:
		// The new value always differs from the old, so "affected" and
		// "matched" rows agree whatever clientFoundRows says.
		r, err := tx.ExecContext(ctx, s.q.updateStreamExact, n, stream, int64(expected))
		if err != nil {
			return 0, expected, err
		}
		if affected, err := r.RowsAffected(); err != nil {
			return 0, expected, err
		} else if affected == 0 {
			return s.ruledAdvance(ctx, tx, stream, expected, n)
		}
		return int64(expected), expected, nil
	}
}

// ruledAdvance is advanceStream for a stream its first statement did not
// move: one with rules, or one at another version. One locking read takes
// the stream's row (the first statement locked it already, or holds a
// shared lock after a duplicate key) and its rules row: a lifecycle write
// holds the stream's row while it writes the rules, so a tombstone that
// committed is seen here and one still to come waits for this append. Then
// it applies the rules as storekit says: a tombstone refuses, NoStream
// accepts a soft-deleted stream, and with MaxCount the cut moves in this
// transaction, in the statement that moves the version.
func (s *Store) ruledAdvance(ctx context.Context, tx *sql.Tx, stream string, expected eventsource.ExpectedVersion, n int64) (int64, eventsource.ExpectedVersion, error) {
	var head int64
	var ruled bool
	var meta []byte
	var cut, maxAge sql.NullInt64
	var ret storekit.Retention
	err := tx.QueryRowContext(ctx, s.q.streamState, stream).Scan(&head, &ruled, &meta, &cut, &maxAge, utcTime{&ret.Since})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, expected, &conflict{actual: 0, expected: expected}
	case err != nil:
		return 0, expected, err
	case ruled && !cut.Valid:
		return 0, expected, fmt.Errorf("%w: stream %q is marked as having rules and has none", eventsource.ErrCorruptData, stream)
	}
	var md eventsource.StreamMetadata
	if ruled {
		ret.Cut, ret.MaxAge = cut.Int64, time.Duration(maxAge.Int64)
		if md, err = storekit.DecodeStreamMetadata(stream, meta); err != nil {
			return 0, expected, err
		}
	}
	if ret.Tombstoned() {
		return 0, expected, storekit.Tombstoned(stream)
	}
	resolved := ret.Expect(expected, head)
	if !resolved.Matches(head) {
		return 0, resolved, &conflict{actual: head, expected: resolved}
	}
	// The metadata's MaxAge is the retention's, so now plays no part.
	if next := ret.Next(md, head+n, false, time.Now()); md.MaxCount > 0 && next.Cut != ret.Cut {
		_, err = tx.ExecContext(ctx, s.q.advanceWithCut, n, next.Cut, stream)
	} else {
		_, err = tx.ExecContext(ctx, s.q.advance, n, stream)
	}
	if err != nil {
		return 0, resolved, err
	}
	return head, resolved, nil
}

// takePositions takes the next n positions from the counter, first to last,
// and holds the counter's row locked until COMMIT, so positions are taken in
// commit order. That alone does not order what readers see: InnoDB
// (MariaDB 10.11 here, under load) can release a committing transaction's
// locks before a new read view sees its rows, so the next append could
// commit, and be read, before the one it followed — and a reader past it
// would never see the earlier positions. So an append proceeds only once
// the append that took the previous position is visible to a read view made
// after taking the counter: readers then see every append's positions only
// after all earlier ones (each append checked its predecessor before it
// committed).
//
// The check costs one statement: the highest visible position must be the
// counter's old value. When it is not (that append is not visible yet, or
// its rows were deleted since), it returns errTailUnknown, and the append
// runs again with the precise check, which reads the counter itself, locked
// and then as a read view sees it, before taking positions
// (errNotVisible while they differ).
func (s *Store) takePositions(ctx context.Context, tx *sql.Tx, n int64, precise bool) (first, last uint64, err error) {
	if precise {
		if err := s.checkPreviousVisible(ctx, tx); err != nil {
			return 0, 0, err
		}
	}
	r, err := tx.ExecContext(ctx, s.q.takePositions, n)
	if err != nil {
		return 0, 0, err
	}
	lastID, err := r.LastInsertId()
	if err != nil {
		return 0, 0, err
	}
	last = uint64(lastID)
	first = last - uint64(n) + 1
	if !precise && first > 1 {
		var tail uint64
		if err := tx.QueryRowContext(ctx, s.q.lastEvent).Scan(&tail); err != nil {
			return 0, 0, err
		}
		if tail != first-1 {
			return 0, 0, errTailUnknown
		}
	}
	return first, last, nil
}

// checkPreviousVisible is the precise check of takePositions: it locks the
// counter and reports errNotVisible unless the highest position a read
// view sees is the counter's value.
func (s *Store) checkPreviousVisible(ctx context.Context, tx *sql.Tx) error {
	var locked, seen uint64
	if err := tx.QueryRowContext(ctx, s.q.lockPosition).Scan(&locked); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, s.q.head).Scan(&seen); err != nil {
		return err
	}
	if seen != locked {
		return errNotVisible
	}
	return nil
}

// insertEvents writes rows with multi-row INSERTs, as few as the server's
// max_allowed_packet and the 65,535 placeholders of a prepared statement allow.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, stream string, base int64, first uint64, rows []eventRow) error {
	const maxRows = 4096 // × 8 placeholders
	budget := int(s.packet.Load())
	var q strings.Builder
	args := make([]any, 0, 8*min(len(rows), maxRows))
	for start := 0; start < len(rows); {
		q.Reset()
		args = args[:0]
		q.WriteString(s.q.insertEventsHead)
		size := 0
		end := start
		for end < len(rows) && end-start < maxRows && (end == start || size+rows[end].size <= budget) {
			if end > start {
				q.WriteString(", ")
			}
			q.WriteString(s.q.insertEventsRow)
			r := rows[end].rec
			args = append(args, first+uint64(end), stream, base+int64(end)+1, r.EventID, r.Type, r.Codec, r.Data, rows[end].metadata)
			size += rows[end].size
			end++
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		start = end
	}
	return nil
}

type storedEvent struct {
	stream   string
	version  int64
	position uint64
}

// retried decides whether recs were stored already, as every store does:
// done is false when none of their IDs is stored; otherwise the append is
// either an exact retry (the original result) or ErrDuplicateEvent
// (storekit.ExactRetry).
func (s *Store) retried(ctx context.Context, stream string, expected eventsource.ExpectedVersion, recs []eventsource.Record) (eventsource.AppendResult, bool, error) {
	stored, err := s.storedIDs(ctx, recs)
	if err != nil {
		return eventsource.AppendResult{}, true, fmt.Errorf("mysql: append to stream %q: look up event IDs: %w", stream, err)
	}
	place := func(i int) (eventsource.Record, bool) {
		st, ok := stored[recs[i].EventID]
		return eventsource.Record{StreamID: st.stream, Version: st.version, Position: st.position, EventID: recs[i].EventID}, ok
	}
	first, found := place(0)
	if !found {
		for i := 1; i < len(recs); i++ {
			if _, dup := place(i); dup {
				return eventsource.AppendResult{}, true, storekit.Duplicate(stream, recs[i].EventID, i)
			}
		}
		return eventsource.AppendResult{}, false, nil
	}
	var following []eventsource.Record
	for i := range recs {
		if r, ok := place(i); ok {
			following = append(following, r)
		}
	}
	res, err := storekit.ExactRetry(stream, expected, storekit.EventIDs(recs), first, following)
	return res, true, err
}

// storedIDs finds which of recs' event IDs are stored, and where.
func (s *Store) storedIDs(ctx context.Context, recs []eventsource.Record) (map[string]storedEvent, error) {
	const chunk = 1000
	out := map[string]storedEvent{}
	for start := 0; start < len(recs); start += chunk {
		part := recs[start:min(start+chunk, len(recs))]
		args := make([]any, len(part))
		for i := range part {
			args[i] = part[i].EventID
		}
		q := s.q.findIDs + "(" + placeholders(len(part)) + ")"
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var e storedEvent
			if err := rows.Scan(&id, &e.stream, &e.version, &e.position); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = e
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// appendArgs is one validated append, as the statement's parameters.
type appendArgs struct {
	stream   string
	expected eventsource.ExpectedVersion
	ids      []string
	types    []string
	codecs   []string
	data     [][]byte
	meta     []*string            // JSON text, nil for no metadata
	recs     []eventsource.Record // validated (event IDs filled in), for inline projections
}

func (s *Store) prepareAppend(stream string, expected eventsource.ExpectedVersion, records []eventsource.Record) (*appendArgs, error) {
	recs := make([]eventsource.Record, len(records))
	copy(recs, records) // ValidateAppend fills in event IDs; the caller's slice stays as it was
	if err := storekit.ValidateAppend(stream, expected, recs, s.Limits()); err != nil {
		return nil, err
	}
	n := len(recs)
	a := &appendArgs{
		stream: stream, expected: expected,
		ids: make([]string, n), types: make([]string, n), codecs: make([]string, n),
		data: make([][]byte, n), meta: make([]*string, n), recs: recs,
	}
	for i := range recs {
		r := &recs[i]
		a.ids[i], a.types[i], a.codecs[i] = r.EventID, r.Type, r.Codec
		a.data[i] = r.Data
		if a.data[i] == nil {
			a.data[i] = []byte{} // data is NOT NULL; nil would be sent as NULL
		}
		if len(r.Metadata) > 0 {
			b, err := json.Marshal(r.Metadata)
			if err != nil {
				return nil, fmt.Errorf("%w: record %d: metadata: %v", eventsource.ErrInvalidEvent, i, err)
			}
			m := string(b)
			a.meta[i] = &m
		}
	}
	return a, nil
}

// statement returns the append statement and its arguments. lock is the
// lock mode of {append_version}: lockTx selects AppendTx's statement (after
// what the transaction already wrote; notify adds a pg_notify sent when it
// commits), the others Append's, the first statement of its transaction,
// with a plain row of parameters for a single record.
func (s *Store) statement(a *appendArgs, lock int, notify bool) (string, []any) {
	switch {
	case lock == lockTx:
		n := 0
		if notify {
			n = 1
		}
		return s.q.appendTx[n], []any{a.stream, a.ids, a.types, a.codecs, a.data, a.meta, lock, int64(a.expected)}
	case len(a.ids) == 1:
		return s.q.appendOne, []any{a.stream, a.ids[0], a.types[0], a.codecs[0], a.data[0], a.meta[0], lock, int64(a.expected)}
	default:
		return s.q.appendMany, []any{a.stream, a.ids, a.types, a.codecs, a.data, a.meta, lock, int64(a.expected)}
	}
}

// Append implements eventsource.Store. On the fast path it is one statement
// in autocommit mode, so one round trip: the version check, the stream's
// rules (a tombstone is *eventsource.StreamDeletedError; a MaxCount moves
// the cut), the streams row and the events are written together or not at
// all. A conflict, a retry and a duplicate event ID cost one more query to
// tell them apart.
//
// If ctx is cancelled while the statement runs, the append may still have
// committed (the server finishes a statement whose client went away);
// retrying it with the same event IDs is safe, as retries are idempotent.
func (s *Store) Append(ctx context.Context, stream string, expected eventsource.ExpectedVersion, records []eventsource.Record) (eventsource.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return eventsource.AppendResult{}, err
	}
	a, err := s.prepareAppend(stream, expected, records)
	if err != nil {
		return eventsource.AppendResult{}, err
	}
	if err := s.ready(ctx); err != nil {
		return eventsource.AppendResult{}, err
	}
	if err := s.catchUp(ctx); err != nil {
		return eventsource.AppendResult{}, err
	}
	for attempt := 1; ; attempt++ {
		var res eventsource.AppendResult
		var stored bool
		// A retry locks the stream's row, so that retries take turns
		// instead of racing each other again.
		lock := lockAppend
		if attempt > 1 {
			lock = lockRetry
		}
		if len(s.cfg.inline) > 0 {
			res, stored, err = s.insertInline(ctx, a, lock)
		} else {
			res, stored, err = s.insert(ctx, s.pool, a, lock)
		}
		if stored {
			s.appended()
		}
		if stored || (err != nil && !isRefusal(err)) {
			return res, err
		}
		if a.expected == eventsource.Any && isVersionRace(err) && attempt < maxAttempts {
			// Another append took the version first and has committed:
			// Any just goes after it.
			continue
		}
		res, retry, err := s.resolve(ctx, s.pool, a)
		if !retry || attempt >= maxAttempts {
			return res, err
		}
		// The stream changed between the refused statement and the lookup
		// (a concurrent append with Any, a delete): try again.
	}
}

// maxAttempts bounds how often Append tries a statement whose check the
// stream keeps failing under it. Only Any retries routinely (each loser of a
// race goes again after the winner), so the bound is about as many
// appenders as race on one stream; past it, Append returns the
// *ConcurrencyError.
const maxAttempts = 32

// refusal is how the database refused an append that the slow path must
// explain: a unique violation on the event ID or on (stream, version).
type refusal struct{ err *pgconn.PgError }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func isRefusal(err error) bool {
	var r *refusal
	return errors.As(err, &r)
}

// isVersionRace reports whether err is a refusal on the (stream, version)
// key: a concurrent append stored that version first.
func isVersionRace(err error) bool {
	var r *refusal
	return errors.As(err, &r) && strings.HasSuffix(r.err.ConstraintName, "events_stream_id_version_key")
}

// insert runs Append's statement on q with the given lock mode. stored is
// false, with a nil error, when the version check failed; a unique
// violation comes back as a *refusal.
func (s *Store) insert(ctx context.Context, q queryer, a *appendArgs, lock int) (eventsource.AppendResult, bool, error) {
	sql, args := s.statement(a, lock, false)
	var n, p1, p2, v1, v2 int64
	var err error
	if len(a.ids) == 1 {
		n = 1
		err = q.QueryRow(ctx, sql, args...).Scan(&p1, &v1)
		p2, v2 = p1, v1
		if errors.Is(err, pgx.ErrNoRows) {
			n, err = 0, nil
		}
	} else {
		err = q.QueryRow(ctx, sql, args...).Scan(&n, &p1, &p2, &v1, &v2)
	}
	if err != nil {
		return eventsource.AppendResult{}, false, s.appendError(ctx, a, err)
	}
	if n == 0 {
		return eventsource.AppendResult{}, false, nil
	}
	return eventsource.AppendResult{
		StreamID: a.stream, FirstVersion: v1, LastVersion: v2,
		FirstPosition: uint64(p1), LastPosition: uint64(p2),
	}, true, nil
}

// insertInline is insert in a READ COMMITTED transaction of its own that
// also runs the inline projections (applyInline) and commits only if they
// succeed.
func (s *Store) insertInline(ctx context.Context, a *appendArgs, lock int) (res eventsource.AppendResult, stored bool, err error) {
	tx, err := s.pool.BeginTx(ctx, readCommitted)
	if err != nil {
		return res, false, wrap(ctx, err, "append %d records to %q: begin", len(a.ids), a.stream)
	}
	defer func() {
		if !stored {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	res, ok, err := s.insert(ctx, tx, a, lock)
	if !ok || err != nil {
		return res, false, err
	}
	if err := s.applyInline(ctx, tx, a, res); err != nil {
		return eventsource.AppendResult{}, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return eventsource.AppendResult{}, false, wrap(ctx, err, "append %d records to %q: commit", len(a.ids), a.stream)
	}
	return res, true, nil
}

// appendError maps a failed append statement to the contract's errors.
func (s *Store) appendError(ctx context.Context, a *appendArgs, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505" && (strings.HasSuffix(pgErr.ConstraintName, "events_event_id_key") ||
			strings.HasSuffix(pgErr.ConstraintName, "events_stream_id_version_key") ||
			strings.HasSuffix(pgErr.ConstraintName, "streams_pkey")):
			return &refusal{pgErr}
		case pgErr.Code == "54000":
			return fmt.Errorf("%w: stream %q: %s", eventsource.ErrTooLarge, a.stream, pgErr.Message)
		case pgErr.Code == codeTombstoned:
			return storekit.Tombstoned(a.stream)
		}
	}
	return wrap(ctx, err, "append %d records to %q", len(a.ids), a.stream)
}

// resolve explains a refused append as the memory store's rules do: if all
// its event IDs are stored in this stream at consecutive versions right after
// the expected one (as the stream's cut resolves it: NoStream after a soft
// delete), it is a retry and gets the original result; if some are stored,
// it is ErrDuplicateEvent; otherwise a *ConcurrencyError with the caller's
// expected version. retry is true when the stream now matches the expected
// version, so the append should be tried again.
func (s *Store) resolve(ctx context.Context, q queryer, a *appendArgs) (res eventsource.AppendResult, retry bool, err error) {
	rows, err := q.Query(ctx, s.q.lookup, a.stream, a.ids)
	if err != nil {
		return res, false, wrap(ctx, err, "append to %q: look up event IDs", a.stream)
	}
	type stored struct {
		stream   *string
		version  *int64
		position *int64
	}
	found := make([]stored, 0, len(a.ids))
	var current int64
	var ret storekit.Retention
	for rows.Next() {
		var st stored
		if err := rows.Scan(&current, &ret.Cut, &st.stream, &st.version, &st.position); err != nil {
			rows.Close()
			return res, false, wrap(ctx, err, "append to %q: look up event IDs", a.stream)
		}
		found = append(found, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, false, wrap(ctx, err, "append to %q: look up event IDs", a.stream)
	}
	if len(found) != len(a.ids) {
		return res, false, fmt.Errorf("postgres: append to %q: lookup returned %d rows for %d IDs", a.stream, len(found), len(a.ids))
	}
	if ret.Tombstoned() {
		return res, false, storekit.Tombstoned(a.stream)
	}
	expected := ret.Expect(a.expected, current)
	place := func(i int) (eventsource.Record, bool) {
		st := found[i]
		if st.stream == nil {
			return eventsource.Record{}, false
		}
		return eventsource.Record{StreamID: *st.stream, Version: *st.version, Position: uint64(*st.position), EventID: a.ids[i]}, true
	}
	first, ok := place(0)
	if !ok {
		for i := 1; i < len(found); i++ {
			if _, dup := place(i); dup {
				return res, false, storekit.Duplicate(a.stream, a.ids[i], i)
			}
		}
		return res, expected.Matches(current), &eventsource.ConcurrencyError{Stream: a.stream, Expected: a.expected, Actual: current}
	}
	var following []eventsource.Record
	for i := range found {
		if r, ok := place(i); ok {
			following = append(following, r)
		}
	}
	res, err = storekit.ExactRetry(a.stream, expected, a.ids, first, following)
	return res, false, err
}

// AppendTx appends records to stream inside the caller's transaction, with
// the same checks, rules and results as Append (a tombstoned stream is a
// *eventsource.StreamDeletedError); the records commit or roll back
// with tx, together with whatever else tx writes. Several appends in one
// transaction get increasing positions, and all of them become visible in
// the global log at once, when tx commits.
//
// The statement runs under a savepoint (SAVEPOINT, the statement and RELEASE
// go in one round trip), so a refused append (a conflict, a duplicate, a
// too-large batch) rolls back only itself and leaves tx usable. The store's
// schema must be migrated already: AppendTx does not migrate inside the
// caller's transaction. A long-running tx delays the global log for every
// reader of the cluster's database; keep it short.
func (s *Store) AppendTx(ctx context.Context, tx pgx.Tx, stream string, expected eventsource.ExpectedVersion, records []eventsource.Record) (eventsource.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return eventsource.AppendResult{}, err
	}
	a, err := s.prepareAppend(stream, expected, records)
	if err != nil {
		return eventsource.AppendResult{}, err
	}
	if s.cfgErr != nil {
		return eventsource.AppendResult{}, s.cfgErr
	}
	if s.closed.Load() {
		return eventsource.AppendResult{}, eventsource.ErrClosed
	}
	if tx == nil {
		return eventsource.AppendResult{}, fmt.Errorf("%w: postgres: AppendTx with a nil transaction", eventsource.ErrInvalidConfig)
	}
	if err := s.catchUp(ctx); err != nil {
		return eventsource.AppendResult{}, err
	}
	res, stored, err := s.insertSavepoint(ctx, tx, a)
	if stored || (err != nil && !isRefusal(err)) {
		return res, err
	}
	// Nothing was written; a retry within one transaction would see the
	// same snapshot of other writers, so resolve once.
	res, _, err = s.resolve(ctx, tx, a)
	return res, err
}

const savepoint = "eventsource_append"

func (s *Store) insertSavepoint(ctx context.Context, tx pgx.Tx, a *appendArgs) (eventsource.AppendResult, bool, error) {
	sql, args := s.statement(a, lockTx, s.cfg.notify)
	var n, p1, p2, v1, v2 int64
	dest := []any{&n, &p1, &p2, &v1, &v2}
	if s.cfg.notify {
		dest = append(dest, nil) // pg_notify's void
	}
	// With inline projections the savepoint stays until they have run,
	// so that their failure undoes the append too.
	release := len(s.cfg.inline) == 0
	b := &pgx.Batch{}
	b.Queue("SAVEPOINT " + savepoint)
	b.Queue(sql, args...)
	if release {
		b.Queue("RELEASE SAVEPOINT " + savepoint)
	}
	br := tx.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		if err = br.QueryRow().Scan(dest...); err == nil && release {
			_, err = br.Exec()
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		err = s.appendError(ctx, a, err)
		// Undo the statement only; tx stays usable (unless the connection broke).
		if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+savepoint+"; RELEASE SAVEPOINT "+savepoint); rerr != nil {
			return eventsource.AppendResult{}, false, errors.Join(err, wrap(ctx, rerr, "append to %q: roll back to savepoint", a.stream))
		}
		return eventsource.AppendResult{}, false, err
	}
	res := eventsource.AppendResult{
		StreamID: a.stream, FirstVersion: v1, LastVersion: v2,
		FirstPosition: uint64(p1), LastPosition: uint64(p2),
	}
	if !release {
		if n > 0 {
			err = s.applyInline(ctx, tx, a, res)
		}
		if err == nil {
			_, err = tx.Exec(ctx, "RELEASE SAVEPOINT "+savepoint)
		} else if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+savepoint+"; RELEASE SAVEPOINT "+savepoint); rerr != nil {
			err = errors.Join(err, wrap(ctx, rerr, "append to %q: roll back to savepoint", a.stream))
		}
		if err != nil {
			return eventsource.AppendResult{}, false, err
		}
	}
	if n == 0 {
		return eventsource.AppendResult{}, false, nil
	}
	return res, true, nil
}

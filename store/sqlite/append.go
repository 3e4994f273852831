package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// Append implements eventsource.Store. Appends in one process take turns;
// across processes SQLite's write lock (with the busy timeout) serialises
// them. Either way commit order is position order.
func (s *Store) Append(ctx context.Context, stream string, expected eventsource.ExpectedVersion, records []eventsource.Record) (eventsource.AppendResult, error) {
	recs := slices.Clone(records)
	if err := storekit.ValidateAppend(stream, expected, recs, s.Limits()); err != nil {
		return eventsource.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventsource.AppendResult{}, err
	}
	if err := s.ready(ctx); err != nil {
		return eventsource.AppendResult{}, err
	}
	s.wmu.Lock()
	res, err := s.caughtUpAppend(ctx, stream, expected, recs)
	s.wmu.Unlock()
	if err == nil {
		s.signal.Fire()
	}
	return res, err
}

// caughtUpAppend is append, after the inline projections' catch-up (once
// per Store). Callers hold wmu.
func (s *Store) caughtUpAppend(ctx context.Context, stream string, expected eventsource.ExpectedVersion, recs []eventsource.Record) (eventsource.AppendResult, error) {
	if err := s.catchUp(ctx); err != nil {
		return eventsource.AppendResult{}, err
	}
	return s.append(ctx, stream, expected, recs)
}

// writer holds the append statements, prepared once on the database (a
// statement prepared on a *sql.Conn would be prepared again by every
// Tx.StmtContext; one prepared on the *sql.DB is cached per connection).
type writer struct {
	rule, insert, moveCut *sql.Stmt
}

func (w *writer) close() {
	for _, st := range []*sql.Stmt{w.rule, w.insert, w.moveCut} {
		if st != nil {
			st.Close()
		}
	}
}

// writerStmts returns the writer, preparing it on first use. Callers hold wmu.
func (s *Store) writerStmts(ctx context.Context) (*writer, error) {
	if s.w != nil {
		return s.w, nil
	}
	w := &writer{}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{{&w.rule, s.q.rule}, {&w.insert, s.q.insertEvent}, {&w.moveCut, s.q.moveCut}} {
		var err error
		if *p.st, err = s.db.PrepareContext(ctx, p.sql); err != nil {
			w.close()
			return nil, err
		}
	}
	s.w = w
	return w, nil
}

// dropWriter closes the prepared statements. Callers hold wmu.
func (s *Store) dropWriter() {
	if s.w != nil {
		s.w.close()
		s.w = nil
	}
}

// errRetryCheck means the append must be checked against what is stored.
var errRetryCheck = errors.New("check for a retried append")

func (s *Store) append(ctx context.Context, stream string, expected eventsource.ExpectedVersion, recs []eventsource.Record) (eventsource.AppendResult, error) {
	w, err := s.writerStmts(ctx)
	if err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	defer tx.Rollback()
	// The rule is read in the append's write transaction: a tombstone or
	// a delete that committed is seen, and none commits before this does.
	r, err := scanRule(tx.StmtContext(ctx, w.rule).QueryRowContext(ctx, stream))
	if err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	if r.ret.Tombstoned() {
		return eventsource.AppendResult{}, storekit.Tombstoned(stream)
	}
	resolved := r.ret.Expect(expected, r.head)
	now := time.Now().UTC()
	res, err := s.write(ctx, tx, w, stream, resolved, r.head, recs, now)
	if errors.Is(err, errRetryCheck) {
		tx.Rollback()
		return s.retried(ctx, stream, expected, resolved, r.head, recs)
	}
	if err == nil && r.maxCount > 0 {
		err = s.moveCut(ctx, tx, w, stream, r, res.LastVersion, now)
	}
	if err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	// After the records and the stream's rules: the projections see the
	// log as the append leaves it.
	if err := s.applyInline(ctx, tx, stream, recs, now); err != nil {
		return eventsource.AppendResult{}, err
	}
	storekit.BeforeCommit(ctx)
	if err := ctx.Err(); err != nil {
		return eventsource.AppendResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	return res, nil
}

// moveCut retires, in the append's transaction, what falls out of the
// MaxCount window of a stream now at version head.
func (s *Store) moveCut(ctx context.Context, tx *sql.Tx, w *writer, stream string, r rule, head int64, now time.Time) error {
	md, err := r.metadata(stream)
	if err != nil {
		return err
	}
	ret := r.ret.Next(md, head, false, now)
	if ret == r.ret {
		return nil
	}
	_, err = tx.StmtContext(ctx, w.moveCut).ExecContext(ctx, stream, ret.Cut, int64(ret.MaxAge), nanos(ret.Since), head)
	return err
}

func (s *Store) write(ctx context.Context, tx *sql.Tx, w *writer, stream string, expected eventsource.ExpectedVersion, current int64, recs []eventsource.Record, at time.Time) (eventsource.AppendResult, error) {
	if !expected.Matches(current) {
		return eventsource.AppendResult{}, errRetryCheck
	}
	last := current + int64(len(recs))
	stmt := tx.StmtContext(ctx, w.insert)
	now := at.UnixNano()
	res := eventsource.AppendResult{StreamID: stream, FirstVersion: current + 1, LastVersion: last}
	for i := range recs {
		r := &recs[i]
		md, err := encodeMetadata(r.Metadata)
		if err != nil {
			return eventsource.AppendResult{}, err
		}
		data := r.Data
		if data == nil {
			data = []byte{}
		}
		out, err := stmt.ExecContext(ctx, stream, current+int64(i)+1, r.EventID, r.Type, r.Codec, data, md, now)
		if isUnique(err) {
			return eventsource.AppendResult{}, errRetryCheck
		}
		if err != nil {
			return eventsource.AppendResult{}, err
		}
		pos, err := out.LastInsertId()
		if err != nil {
			return eventsource.AppendResult{}, err
		}
		r.Version, r.Position = current+int64(i)+1, uint64(pos)
		if i == 0 {
			res.FirstPosition = uint64(pos)
		}
		res.LastPosition = uint64(pos)
	}
	return res, nil
}

func isUnique(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func encodeMetadata(md map[string]string) (any, error) {
	if len(md) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata: %w", eventsource.ErrInvalidEvent, err)
	}
	return string(b), nil
}

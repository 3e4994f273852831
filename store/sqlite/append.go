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
	res, err := s.append(ctx, stream, expected, recs)
	s.wmu.Unlock()
	if err == nil {
		s.signal.Fire()
	}
	return res, err
}

// writer holds the append statements, prepared once on the database (a
// statement prepared on a *sql.Conn would be prepared again by every
// Tx.StmtContext; one prepared on the *sql.DB is cached per connection).
type writer struct {
	version, insert *sql.Stmt
}

func (w *writer) close() {
	for _, st := range []*sql.Stmt{w.version, w.insert} {
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
	}{{&w.version, s.q.version}, {&w.insert, s.q.insertEvent}} {
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
	var current int64
	if err := tx.StmtContext(ctx, w.version).QueryRowContext(ctx, stream).Scan(&current); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	res, err := s.write(ctx, tx, w, stream, expected, current, recs)
	if errors.Is(err, errRetryCheck) {
		tx.Rollback()
		return s.retried(ctx, stream, expected, current, recs)
	}
	if err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
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

func (s *Store) write(ctx context.Context, tx *sql.Tx, w *writer, stream string, expected eventsource.ExpectedVersion, current int64, recs []eventsource.Record) (eventsource.AppendResult, error) {
	if !expected.Matches(current) {
		return eventsource.AppendResult{}, errRetryCheck
	}
	last := current + int64(len(recs))
	stmt := tx.StmtContext(ctx, w.insert)
	now := time.Now().UTC().UnixNano()
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

package sqlite

import (
	"context"
	"database/sql"
	"iter"
	"math"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/jsonmap"
	"github.com/eventsource-go/eventsource/internal/page"
	"github.com/eventsource-go/eventsource/storekit"
)

func scanRecord(rows *sql.Rows) (eventsource.Record, error) {
	var r eventsource.Record
	var md sql.NullString
	var at int64
	if err := rows.Scan(&r.Position, &r.StreamID, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &md, &at); err != nil {
		return r, err
	}
	if r.Data == nil {
		r.Data = []byte{}
	}
	if err := jsonmap.DecodeMetadata(&r, []byte(md.String)); err != nil {
		return r, err
	}
	r.RecordedAt = time.Unix(0, at).UTC()
	return r, nil
}

// ReadStream implements eventsource.Store. Each page reads the stream's
// rules in its own statement: it starts at the cut and leaves out what
// MaxAge retires. A tombstoned stream yields a *StreamDeletedError.
func (s *Store) ReadStream(ctx context.Context, stream string, from, to int64) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		if err := eventsource.ValidateStreamID(stream); err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		if err := s.ready(ctx); err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		if from < 1 {
			from = 1
		}
		if to <= 0 {
			to = math.MaxInt64
		}
		empty := true
		s.paginate(ctx, func(r eventsource.Record, err error) bool {
			empty = false
			return yield(r, err)
		}, func(after eventsource.Record, first bool) (*sql.Rows, error) {
			next := from
			if !first {
				next = after.Version + 1
			}
			return s.db.QueryContext(ctx, s.q.stream, stream, next, to, time.Now().UnixNano(), s.batch)
		})
		// A tombstoned stream reads no record (its cut is past every
		// version), so only a read that found none asks whether it is.
		if empty {
			if err := s.tombstoned(ctx, stream); err != nil {
				yield(eventsource.Record{}, err)
			}
		}
	}
}

// tombstoned returns a *StreamDeletedError if stream is tombstoned.
func (s *Store) tombstoned(ctx context.Context, stream string) error {
	r, err := scanRule(s.db.QueryRowContext(ctx, s.q.rule, stream))
	switch {
	case err != nil:
		return s.wrap("read", err)
	case r.ret.Tombstoned():
		return storekit.Tombstoned(stream)
	}
	return nil
}

// ReadAll implements eventsource.Store. The filter, and the streams' rules
// (what they retire is left out), are evaluated by SQLite in each page's
// query.
func (s *Store) ReadAll(ctx context.Context, from uint64, f eventsource.Filter) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		if err := s.ready(ctx); err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		query, args := s.allQuery(f)
		s.paginate(ctx, yield, func(after eventsource.Record, first bool) (*sql.Rows, error) {
			next := from
			if !first {
				next = after.Position + 1
			}
			args[0], args[len(args)-2] = int64(next), time.Now().UnixNano()
			return s.db.QueryContext(ctx, query, args...)
		})
	}
}

// paginate runs query for batch after batch (each starting after the last
// record yielded), closing each result set before yielding, so no connection
// is held while the caller works.
func (s *Store) paginate(ctx context.Context, yield func(eventsource.Record, error) bool, query func(after eventsource.Record, first bool) (*sql.Rows, error)) {
	// One slice for every page: page.Seq has yielded a page before it
	// fetches the next.
	batch := make([]eventsource.Record, 0, min(s.batch, 1024))
	page.Seq(s.batch, func(last eventsource.Record, first bool) ([]eventsource.Record, error) {
		rows, err := query(last, first)
		if err != nil {
			return nil, s.wrap("read", err)
		}
		defer rows.Close()
		batch = batch[:0]
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				return nil, s.wrap("read", err)
			}
			batch = append(batch, r)
		}
		return batch, s.wrap("read", rows.Err())
	})(yield)
}

// Head implements eventsource.HeadReader.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	var p int64
	if err := s.db.QueryRowContext(ctx, s.q.head).Scan(&p); err != nil {
		return 0, s.wrap("head", err)
	}
	return uint64(p), nil
}

// ListStreams implements eventsource.StreamLister. Deleted streams, and
// streams that have metadata and no events, are left out.
func (s *Store) ListStreams(ctx context.Context, prefix string) iter.Seq2[eventsource.StreamInfo, error] {
	return page.Seq(s.batch, func(last eventsource.StreamInfo, _ bool) ([]eventsource.StreamInfo, error) {
		if err := s.ready(ctx); err != nil {
			return nil, err
		}
		rows, err := s.db.QueryContext(ctx, s.q.list, last.StreamID, len([]rune(prefix)), prefix, s.batch)
		if err != nil {
			return nil, s.wrap("list streams", err)
		}
		defer rows.Close()
		var infos []eventsource.StreamInfo
		for rows.Next() {
			var info eventsource.StreamInfo
			if err := rows.Scan(&info.StreamID, &info.Version); err != nil {
				return nil, s.wrap("list streams", err)
			}
			infos = append(infos, info)
		}
		return infos, s.wrap("list streams", rows.Err())
	})
}

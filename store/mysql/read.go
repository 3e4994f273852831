package mysql

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/jsonmap"
	"github.com/eventsource-go/eventsource/internal/page"
	"github.com/eventsource-go/eventsource/storekit"
)

// utcTime scans a DATETIME written in UTC, whatever the DSN's parseTime and
// loc say: the driver hands over text, or a time.Time whose wall clock is
// the stored one in loc.
type utcTime struct{ t *time.Time }

func (u utcTime) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*u.t = time.Date(v.Year(), v.Month(), v.Day(), v.Hour(), v.Minute(), v.Second(), v.Nanosecond(), time.UTC)
		return nil
	case []byte:
		return u.parse(string(v))
	case string:
		return u.parse(v)
	case nil:
		*u.t = time.Time{}
		return nil
	}
	return fmt.Errorf("mysql: cannot scan %T into a time", src)
}

func (u utcTime) parse(s string) error {
	t, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", s, time.UTC)
	if err != nil {
		return fmt.Errorf("mysql: recorded_at: %w", err)
	}
	*u.t = t
	return nil
}

// scanRecords reads a batch of records and releases its connection.
func scanRecords(rows *sql.Rows, capacity int) ([]eventsource.Record, error) {
	defer rows.Close()
	out := make([]eventsource.Record, 0, capacity)
	for rows.Next() {
		var r eventsource.Record
		var md sql.NullString
		if err := rows.Scan(&r.Position, &r.StreamID, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &md, utcTime{&r.RecordedAt}); err != nil {
			return nil, err
		}
		if r.Data == nil {
			r.Data = []byte{}
		}
		if err := jsonmap.DecodeMetadata(&r, []byte(md.String)); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadStream implements eventsource.Store. It reads WithBatchSize versions
// per query by (stream, version), and holds no connection while the caller
// handles a batch. The query reads the stream's row and rules with the
// records: it starts at the cut, leaves out what the rules retire and
// tells a tombstoned stream (a *StreamDeletedError) without another round
// trip.
func (s *Store) ReadStream(ctx context.Context, stream string, from, to int64) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		if err := eventsource.ValidateStreamID(stream); err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		if from < 1 {
			from = 1
		}
		if to <= 0 {
			to = math.MaxInt64
		}
		for next := from; next <= to; {
			if err := s.ready(ctx); err != nil {
				yield(eventsource.Record{}, err)
				return
			}
			// A tight version range: versions are contiguous, so it holds
			// one batch at most, and the optimizer sees a small range scan
			// (with an open end it may scan the stream from its start).
			hi := to
			if to-next >= int64(s.cfg.batch) {
				hi = next + int64(s.cfg.batch) - 1
			}
			b, err := s.readStreamBatch(ctx, stream, next, hi)
			if err != nil {
				yield(eventsource.Record{}, fmt.Errorf("mysql: read stream %q from version %d: %w", stream, next, err))
				return
			}
			if b.ret.Tombstoned() {
				yield(eventsource.Record{}, storekit.Tombstoned(stream))
				return
			}
			for _, r := range b.records {
				if !yield(r, nil) {
					return
				}
			}
			// Retired records leave holes in a ruled stream's batch, so
			// its version says where it ends; any other stream ends at the
			// first batch that does not fill its range.
			end := to
			if b.ruled {
				end = min(to, b.head)
			} else if int64(len(b.records)) < hi-next+1 {
				return
			}
			if next = max(hi+1, b.ret.Cut); hi >= end || next > end {
				return
			}
		}
	}
}

// streamBatch is one query of ReadStream: the stream's visible records with
// versions from max(from, cut) to to, in version order, and, for a stream
// with rules, its version and cut.
type streamBatch struct {
	ruled   bool
	head    int64 // when ruled
	ret     storekit.Retention
	records []eventsource.Record
}

// readStreamBatch runs one query of ReadStream.
func (s *Store) readStreamBatch(ctx context.Context, stream string, from, to int64) (streamBatch, error) {
	b := streamBatch{ret: storekit.Retention{Cut: 1}, records: make([]eventsource.Record, 0, to-from+1)}
	rows, err := s.db.QueryContext(ctx, s.q.readStream, from, to, stream)
	if err != nil {
		return b, err
	}
	defer rows.Close()
	sorted := true
	for rows.Next() {
		var head, cut sql.NullInt64
		var md sql.NullString
		r := eventsource.Record{StreamID: stream}
		if err := rows.Scan(&head, &cut, &r.Position, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &md, utcTime{&r.RecordedAt}); err != nil {
			return b, err
		}
		if cut.Valid {
			b.ret.Cut, b.head, b.ruled = cut.Int64, head.Int64, true
		}
		if r.Version == 0 {
			continue // the stream's row alone: no record is visible
		}
		if r.Data == nil {
			r.Data = []byte{}
		}
		if err := jsonmap.DecodeMetadata(&r, []byte(md.String)); err != nil {
			return b, err
		}
		if n := len(b.records); n > 0 && b.records[n-1].Version > r.Version {
			sorted = false
		}
		b.records = append(b.records, r)
	}
	if err := rows.Err(); err != nil {
		return b, err
	}
	if !sorted {
		slices.SortFunc(b.records, func(x, y eventsource.Record) int { return cmp.Compare(x.Version, y.Version) })
	}
	return b, nil
}

// ReadAll implements eventsource.Store. Records come in position order; the
// positions of committed records only grow (see the package documentation),
// so a reader that resumes after the last position it saw misses nothing.
// Records their stream's rules retire are left out by the same query, which
// looks each record's stream up in {prefix}stream_rules (the streams that
// have metadata or a delete) only when that table is not empty.
// The filter runs in SQL: exact byte comparison of stream IDs and types,
// LEFT(stream_id, n) for prefixes (no LIKE, so % and _ are plain
// characters), and JSON_CONTAINS for metadata; each record is checked with
// Filter.Match as well, so the result is exactly what Match selects.
func (s *Store) ReadAll(ctx context.Context, from uint64, f eventsource.Filter) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		q, args, err := s.readAllQuery(f)
		if err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		if from < 1 {
			from = 1
		}
		args = append(append([]any{from}, args...), s.cfg.batch)
		for next := from; ; {
			if err := s.ready(ctx); err != nil {
				yield(eventsource.Record{}, err)
				return
			}
			args[0] = next
			rows, err := s.db.QueryContext(ctx, q, args...)
			var batch []eventsource.Record
			if err == nil {
				batch, err = scanRecords(rows, s.cfg.batch)
			}
			if err != nil {
				yield(eventsource.Record{}, fmt.Errorf("mysql: read the global log from position %d: %w", next, err))
				return
			}
			for i := range batch {
				if f.Match(&batch[i]) && !yield(batch[i], nil) {
					return
				}
			}
			if len(batch) < s.cfg.batch {
				return
			}
			next = batch[len(batch)-1].Position + 1
		}
	}
}

// readAllQuery builds the SELECT of ReadAll for f, with placeholders only.
// It returns the filter's arguments; the caller puts the position before
// them and the batch size after.
func (s *Store) readAllQuery(f eventsource.Filter) (string, []any, error) {
	var b strings.Builder
	var args []any
	if len(f.Streams) > 0 || len(f.StreamPrefixes) > 0 {
		var or []string
		if len(f.Streams) > 0 {
			or = append(or, "e.stream_id IN ("+placeholders(len(f.Streams))+")")
			for _, id := range f.Streams {
				args = append(args, id)
			}
		}
		for _, p := range f.StreamPrefixes {
			or = append(or, "LEFT(e.stream_id, ?) = ?")
			args = append(args, len(p), p)
		}
		b.WriteString(" AND (" + strings.Join(or, " OR ") + ")")
	}
	if len(f.Types) > 0 {
		b.WriteString(" AND e.type IN (" + placeholders(len(f.Types)) + ")")
		for _, t := range f.Types {
			args = append(args, t)
		}
	}
	if len(f.Metadata) > 0 {
		js, err := encodeMetadata(f.Metadata)
		if err != nil {
			return "", nil, fmt.Errorf("%w: metadata filter: %v", eventsource.ErrInvalidEvent, err)
		}
		b.WriteString(" AND JSON_CONTAINS(e.metadata, ?)")
		args = append(args, js)
	}
	q := s.q.readAll + b.String() + " ORDER BY e.position LIMIT ?"
	return q, args, nil
}

// Head implements eventsource.HeadReader: the last position handed out to a
// committed append (the counter row as committed), 0 for an empty store.
// It may name a position whose record is retired or scavenged.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	var p uint64
	if err := s.db.QueryRowContext(ctx, s.q.head).Scan(&p); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return 0, fmt.Errorf("mysql: read head: %w", err)
	}
	return p, nil
}

// Notify implements eventsource.Notifier. MySQL has no LISTEN/NOTIFY: an
// append through this Store wakes the channel at once, and a poll of Head
// every WithPollInterval catches appends made elsewhere. Signals are
// coalesced (at most one pending); the channel is closed when ctx is done or
// the store is closed.
func (s *Store) Notify(ctx context.Context) (<-chan struct{}, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	return s.signal.Subscribe(ctx, s.cfg.poll, s.Head), nil
}

// ListStreams implements eventsource.StreamLister: streams whose ID starts
// with prefix (byte-wise), in byte order of their IDs, fetched in batches.
// Streams with no visible record by their rules (soft-deleted, tombstoned,
// metadata only) are left out; Version is the stream's last version.
func (s *Store) ListStreams(ctx context.Context, prefix string) iter.Seq2[eventsource.StreamInfo, error] {
	return page.Seq(s.cfg.batch, func(last eventsource.StreamInfo, _ bool) ([]eventsource.StreamInfo, error) {
		if err := s.ready(ctx); err != nil {
			return nil, err
		}
		batch, err := s.listBatch(ctx, last.StreamID, prefix)
		if err != nil {
			return nil, fmt.Errorf("mysql: list streams %q: %w", prefix, err)
		}
		return batch, nil
	})
}

func (s *Store) listBatch(ctx context.Context, after, prefix string) ([]eventsource.StreamInfo, error) {
	rows, err := s.db.QueryContext(ctx, s.q.listStreams, after, len(prefix), prefix, s.cfg.batch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []eventsource.StreamInfo
	for rows.Next() {
		var info eventsource.StreamInfo
		if err := rows.Scan(&info.StreamID, &info.Version); err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, rows.Err()
}

package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/jsonmap"
	"github.com/eventsource-go/eventsource/internal/page"
	"github.com/eventsource-go/eventsource/storekit"
)

// scanRecord reads one row of recordColumns.
func scanRecord(rows pgx.Rows, r *eventsource.Record) error {
	var pos int64
	var md []byte // jsonb as text: jsonmap decodes the flat objects faster than encoding/json
	if err := rows.Scan(&pos, &r.StreamID, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &md, &r.RecordedAt); err != nil {
		return err
	}
	if err := jsonmap.DecodeMetadata(r, md); err != nil {
		return err
	}
	r.Position = uint64(pos)
	r.RecordedAt = r.RecordedAt.UTC()
	if r.Data == nil {
		r.Data = []byte{}
	}
	return nil
}

// batch runs one read query and collects its rows, so the connection goes
// back to the pool before the caller sees a record.
func (s *Store) batch(ctx context.Context, sql string, args ...any) ([]eventsource.Record, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]eventsource.Record, 0, min(s.cfg.batch, 1024))
	for rows.Next() {
		var r eventsource.Record
		if err := scanRecord(rows, &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReadStream implements eventsource.Store. It reads in batches of the
// configured size by keyset (version > last seen), releasing the connection
// between batches; each batch is its own snapshot, and since a stream only
// grows at its end, the records come out contiguous. Stream reads see an
// append as soon as it commits (no global-order bound applies). Each batch
// applies the stream's rules of its moment: it starts at the stream's cut
// and leaves out records retired by age; a tombstoned stream yields one
// *eventsource.StreamDeletedError.
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
		from = max(from, 1)
		for {
			if err := ctx.Err(); err != nil {
				yield(eventsource.Record{}, err)
				return
			}
			var recs []eventsource.Record
			var err error
			if to > 0 {
				recs, err = s.batch(ctx, s.q.readStreamTo, stream, from, s.cfg.batch, to)
			} else {
				recs, err = s.batch(ctx, s.q.readStream, stream, from, s.cfg.batch)
			}
			if isTombstoned(err) {
				yield(eventsource.Record{}, storekit.Tombstoned(stream))
				return
			}
			if err != nil {
				yield(eventsource.Record{}, wrap(ctx, err, "read stream %q from version %d", stream, from))
				return
			}
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
			if len(recs) < s.cfg.batch {
				return
			}
			from = recs[len(recs)-1].Version + 1
		}
	}
}

// filter is an eventsource.Filter ready for SQL: values that no stored
// record can hold (invalid UTF-8, NUL bytes) are dropped, and none says the
// filter matches nothing at all.
type filter struct {
	streams, prefixes, types []string
	metadata                 string // JSON object for @>, "" for none
	none                     bool
}

func storable(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

func keep(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if storable(s) {
			out = append(out, s)
		}
	}
	return out
}

func newFilter(f eventsource.Filter) (*filter, error) {
	out := &filter{streams: keep(f.Streams), prefixes: keep(f.StreamPrefixes), types: keep(f.Types)}
	if (len(f.Streams) > 0 || len(f.StreamPrefixes) > 0) && len(out.streams) == 0 && len(out.prefixes) == 0 {
		out.none = true
	}
	if len(f.Types) > 0 && len(out.types) == 0 {
		out.none = true
	}
	if len(f.Metadata) > 0 {
		for k, v := range f.Metadata {
			if !storable(k) || !storable(v) {
				out.none = true
			}
		}
		b, err := json.Marshal(f.Metadata)
		if err != nil {
			return nil, err
		}
		out.metadata = string(b)
	}
	return out, nil
}

// ReadAll implements eventsource.Store. It yields records below the global
// log's visibility bound (see the package documentation), so a reader that
// has seen position P never later meets a record at or below P. Every
// filter field, and the rules of each record's stream, are evaluated by
// PostgreSQL; batches are keyset-paged by position and the connection is
// released between them.
func (s *Store) ReadAll(ctx context.Context, from uint64, f eventsource.Filter) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		if err := s.ready(ctx); err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		flt, err := newFilter(f)
		if err != nil {
			yield(eventsource.Record{}, fmt.Errorf("postgres: read all: filter: %w", err))
			return
		}
		if flt.none || from > math.MaxInt64 {
			return
		}
		sql, args := s.q.readAllSQL(flt)
		next := int64(max(from, 1))
		settled := false
		for {
			if err := ctx.Err(); err != nil {
				yield(eventsource.Record{}, err)
				return
			}
			args[0], args[1] = next, s.cfg.batch
			recs, err := s.batch(ctx, sql, args...)
			if err != nil {
				yield(eventsource.Record{}, wrap(ctx, err, "read all from position %d", next))
				return
			}
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
			if len(recs) > 0 {
				next = int64(recs[len(recs)-1].Position) + 1
			}
			if len(recs) < s.cfg.batch {
				// At the end of what is visible: if newer transactions have
				// committed records that older, running ones still hold back,
				// wait for those once, then read on.
				if settled {
					return
				}
				settled = true
				more, err := s.settle(ctx, next)
				if err != nil {
					yield(eventsource.Record{}, wrap(ctx, err, "read all from position %d", next))
					return
				}
				if !more {
					return
				}
			}
		}
	}
}

// settle is called when a reader has read every record below the
// visibility bound from position next on. It reports whether records at or
// after next are committed (visible to a new snapshot) and, when some of
// them are still above the bound, waits up to the configured read wait for
// the transactions holding them back to end.
func (s *Store) settle(ctx context.Context, next int64) (bool, error) {
	var bnd, head int64
	if err := s.pool.QueryRow(ctx, s.q.limits).Scan(&bnd, &head); err != nil {
		return false, err
	}
	if head < next {
		return false, nil
	}
	if err := s.waitBound(ctx, bnd, head); err != nil {
		return false, err
	}
	return true, nil
}

// waitBound polls the visibility bound until it passes head or the read wait
// runs out. bnd is the last bound seen.
func (s *Store) waitBound(ctx context.Context, bnd, head int64) error {
	if bnd > head || s.cfg.readWait <= 0 {
		return nil
	}
	deadline := time.Now().Add(s.cfg.readWait)
	pause := time.Millisecond
	for bnd <= head && time.Now().Before(deadline) {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 25*time.Millisecond)
		if err := s.pool.QueryRow(ctx, s.q.bound).Scan(&bnd); err != nil {
			return err
		}
	}
	return nil
}

// Head implements eventsource.HeadReader: the largest position a ReadAll
// started now could yield, 0 for an empty log.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	head, err := s.head(ctx, true)
	if err != nil {
		return 0, wrap(ctx, err, "head")
	}
	return uint64(head), nil
}

// head returns the newest position below the visibility bound, first
// waiting (when wait is set) for running transactions to let the newest
// committed record through.
func (s *Store) head(ctx context.Context, wait bool) (int64, error) {
	if wait && s.cfg.readWait > 0 {
		var bnd, newest int64
		if err := s.pool.QueryRow(ctx, s.q.limits).Scan(&bnd, &newest); err != nil {
			return 0, err
		}
		if err := s.waitBound(ctx, bnd, newest); err != nil {
			return 0, err
		}
	}
	var head int64
	err := s.pool.QueryRow(ctx, s.q.head).Scan(&head)
	return head, err
}

// ListStreams implements eventsource.StreamLister: streams whose ID starts
// with prefix, in byte order of their IDs, keyset-paged in batches. Streams
// with no visible version (soft-deleted, tombstoned, or with metadata and
// no events) are left out; StreamInfo.Version is the stream's version.
func (s *Store) ListStreams(ctx context.Context, prefix string) iter.Seq2[eventsource.StreamInfo, error] {
	return func(yield func(eventsource.StreamInfo, error) bool) {
		if err := s.ready(ctx); err != nil {
			yield(eventsource.StreamInfo{}, err)
			return
		}
		if !storable(prefix) {
			return
		}
		upper := prefixEnd(prefix)
		page.Seq(s.cfg.batch, func(last eventsource.StreamInfo, _ bool) ([]eventsource.StreamInfo, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			infos, err := s.listBatch(ctx, last.StreamID, prefix, upper)
			if err != nil {
				return nil, wrap(ctx, err, "list streams with prefix %q", prefix)
			}
			return infos, nil
		})(yield)
	}
}

func (s *Store) listBatch(ctx context.Context, after, prefix string, upper *string) ([]eventsource.StreamInfo, error) {
	rows, err := s.pool.Query(ctx, s.q.listStreams, after, prefix, upper, s.cfg.batch)
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

// prefixEnd returns the smallest valid UTF-8 string above every string that
// starts with prefix, in byte order (nil when there is none), so a prefix
// scan is a bounded index range. UTF-8 byte order is code point order, so
// raising the last rune that can be raised does it.
func prefixEnd(prefix string) *string {
	for p := prefix; p != ""; {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		if r == utf8.MaxRune {
			continue
		}
		r++
		if r == 0xD800 { // skip the surrogates, which UTF-8 cannot encode
			r = 0xE000
		}
		end := p + string(r)
		return &end
	}
	return nil
}

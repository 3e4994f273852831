package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"time"
	"unicode/utf8"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

// inline is a read model kept in the transaction of each append (WithInline).
type inline struct {
	name string
	rm   projection.ReadModel[*sql.Tx]
}

// WithInline registers rm as an inline projection named name: every append
// of the store calls rm.Apply in its own transaction, after inserting its
// records, so the read model shows an append as soon as Append returns. If
// Apply fails, the append rolls back, stores nothing and returns an
// *eventsource.InlineProjectionError. Several inline projections run in the
// order they are given. A name is 1 to 200 bytes of UTF-8 without NUL, and
// unique in the store; its position is kept in {prefix}inline_projections.
// See the package documentation, Inline projections.
func WithInline(name string, rm projection.ReadModel[*sql.Tx]) Option {
	return func(s *Store) { s.inline = append(s.inline, inline{name: name, rm: rm}) }
}

// maxInlineName bounds a projection's name, in bytes.
const maxInlineName = 200

func validInline(in []inline) error {
	seen := map[string]bool{}
	for _, p := range in {
		switch {
		case p.name == "" || len(p.name) > maxInlineName || !utf8.ValidString(p.name):
			return fmt.Errorf("%w: sqlite: inline projection name %q: want 1 to %d bytes of UTF-8", eventsource.ErrInvalidConfig, p.name, maxInlineName)
		case containsNUL(p.name):
			return fmt.Errorf("%w: sqlite: inline projection name %q holds a NUL byte", eventsource.ErrInvalidConfig, p.name)
		case seen[p.name]:
			return fmt.Errorf("%w: sqlite: inline projection %q registered twice", eventsource.ErrInvalidConfig, p.name)
		case p.rm == nil:
			return fmt.Errorf("%w: sqlite: inline projection %q has a nil read model", eventsource.ErrInvalidConfig, p.name)
		}
		seen[p.name] = true
	}
	return nil
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// catchUp brings every inline projection up to the head of the log: it
// creates its position row (and the read model, when IsInitialized says it
// is not there; a new read model starts from position 0), then applies
// what the global log shows after its position, a batch per write
// transaction that also moves the position. Callers hold wmu; once it has
// succeeded it does nothing, and each append keeps the projections current.
func (s *Store) catchUp(ctx context.Context) error {
	if s.caughtUp || len(s.inline) == 0 {
		return nil
	}
	for _, p := range s.inline {
		if err := s.initInline(ctx, p); err != nil {
			return err
		}
		for {
			done, err := s.catchUpBatch(ctx, p)
			if err != nil {
				return err
			}
			if done {
				break
			}
		}
	}
	s.caughtUp = true
	return nil
}

func (s *Store) initInline(ctx context.Context, p inline) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("inline projections", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.q.inlineCreate, p.name); err != nil {
		return s.wrap("inline projection "+p.name, err)
	}
	ok, err := p.rm.IsInitialized(ctx, tx)
	if err != nil {
		return fmt.Errorf("%w: sqlite: inline projection %q: IsInitialized: %w", eventsource.ErrInlineProjection, p.name, err)
	}
	if !ok {
		if err := p.rm.Init(ctx, tx); err != nil {
			return fmt.Errorf("%w: sqlite: inline projection %q: Init: %w", eventsource.ErrInlineProjection, p.name, err)
		}
		// A read model that was not there has seen nothing.
		if _, err := tx.ExecContext(ctx, s.q.inlineReset, p.name); err != nil {
			return s.wrap("inline projection "+p.name, err)
		}
	}
	return s.wrap("inline projection "+p.name, tx.Commit())
}

// catchUpBatch applies one batch of what p has not seen, in a write
// transaction of its own, and reports whether p is at the head.
func (s *Store) catchUpBatch(ctx context.Context, p inline) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, s.wrap("inline projection "+p.name, err)
	}
	defer tx.Rollback()
	var from int64
	if err := tx.QueryRowContext(ctx, s.q.inlinePosition, p.name).Scan(&from); err != nil {
		return false, s.wrap("inline projection "+p.name, err)
	}
	var head int64
	if err := tx.QueryRowContext(ctx, s.q.head).Scan(&head); err != nil {
		return false, s.wrap("inline projection "+p.name, err)
	}
	if from >= head {
		return true, nil
	}
	recs, err := s.inlineBatch(ctx, tx, from, head+1)
	if err != nil {
		return false, s.wrap("inline projection "+p.name, err)
	}
	done := len(recs) < s.batch
	to := head // a short batch is the end: what it did not show is retired
	if len(recs) > 0 {
		if err := p.rm.Apply(ctx, tx, recs); err != nil {
			return false, fmt.Errorf("%w: sqlite: inline projection %q: catching up after position %d: %w", eventsource.ErrInlineProjection, p.name, from, err)
		}
		if !done {
			to = int64(recs[len(recs)-1].Position)
		}
	}
	if _, err := tx.ExecContext(ctx, s.q.inlineMove, p.name, to); err != nil {
		return false, s.wrap("inline projection "+p.name, err)
	}
	return done, s.wrap("inline projection "+p.name, tx.Commit())
}

// inlineBatch reads, in tx, up to a batch of the records the global log
// shows at positions after from and before to, in position order.
func (s *Store) inlineBatch(ctx context.Context, tx *sql.Tx, from, to int64) ([]eventsource.Record, error) {
	rows, err := tx.QueryContext(ctx, s.q.inlineRecords, from+1, to, time.Now().UnixNano(), s.batch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []eventsource.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// applyInline runs the inline projections in the append's transaction,
// after its records (recs, with versions and positions) were inserted at
// time at. Each first applies what the global log shows between its
// position and the append (records appended without the option, by this
// or another process: one writer at a time, so they have all committed),
// then the append's records as a read returns them, and moves its position
// to the append's last.
func (s *Store) applyInline(ctx context.Context, tx *sql.Tx, stream string, recs []eventsource.Record, at time.Time) error {
	if len(s.inline) == 0 {
		return nil
	}
	stored := storedRecords(stream, recs, at)
	first, last := int64(stored[0].Position), int64(stored[len(stored)-1].Position)
	for _, p := range s.inline {
		var from int64
		if err := tx.QueryRowContext(ctx, s.q.inlinePosition, p.name).Scan(&from); err != nil {
			return s.wrap("append: inline projection "+p.name, err)
		}
		for from < first-1 {
			gap, err := s.inlineBatch(ctx, tx, from, first)
			if err != nil {
				return s.wrap("append: inline projection "+p.name, err)
			}
			if len(gap) > 0 {
				if err := p.rm.Apply(ctx, tx, gap); err != nil {
					return &eventsource.InlineProjectionError{Projection: p.name, Stream: stream, Err: err}
				}
			}
			if len(gap) < s.batch {
				break
			}
			from = int64(gap[len(gap)-1].Position)
		}
		if err := p.rm.Apply(ctx, tx, stored); err != nil {
			return &eventsource.InlineProjectionError{Projection: p.name, Stream: stream, Err: err}
		}
		if _, err := tx.ExecContext(ctx, s.q.inlineMove, p.name, last); err != nil {
			return s.wrap("append: inline projection "+p.name, err)
		}
	}
	return nil
}

// storedRecords returns recs as a read returns them once stored at time at:
// Data never nil, Metadata nil when empty, RecordedAt in UTC.
func storedRecords(stream string, recs []eventsource.Record, at time.Time) []eventsource.Record {
	out := make([]eventsource.Record, len(recs))
	recorded := time.Unix(0, at.UnixNano()).UTC()
	for i, r := range recs {
		data := r.Data
		if data == nil {
			data = []byte{}
		}
		var md map[string]string
		if len(r.Metadata) > 0 {
			md = maps.Clone(r.Metadata)
		}
		out[i] = eventsource.Record{
			StreamID: stream, Version: r.Version, Position: r.Position, EventID: r.EventID,
			Type: r.Type, Codec: r.Codec, Data: data, Metadata: md, RecordedAt: recorded,
		}
	}
	return out
}

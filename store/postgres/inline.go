package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

// inline is a read model kept in the transaction of each append (WithInline).
type inline struct {
	name string
	rm   projection.ReadModel[pgx.Tx]
}

// WithInline registers rm as an inline projection named name: every Append
// and AppendTx of the store calls rm.Apply in the append's transaction,
// after inserting its records, so the read model shows an append as soon
// as it returns (with AppendTx: inside the caller's transaction). If Apply
// fails, the append rolls back (AppendTx: to its savepoint), stores nothing
// and returns an *eventsource.InlineProjectionError. Several inline
// projections run in the order they are given. A name is 1 to 200 bytes of
// UTF-8 without NUL, unique in the store. See the package documentation,
// Inline projections.
func WithInline(name string, rm projection.ReadModel[pgx.Tx]) Option {
	return func(c *config) { c.inline = append(c.inline, inline{name: name, rm: rm}) }
}

// maxInlineName bounds a projection's name, in bytes.
const maxInlineName = 200

func validInline(in []inline) error {
	seen := map[string]bool{}
	for _, p := range in {
		switch {
		case p.name == "" || len(p.name) > maxInlineName || !utf8.ValidString(p.name):
			return fmt.Errorf("%w: postgres: inline projection name %q: want 1 to %d bytes of UTF-8", eventsource.ErrInvalidConfig, p.name, maxInlineName)
		case strings.IndexByte(p.name, 0) >= 0:
			return fmt.Errorf("%w: postgres: inline projection name %q holds a NUL byte", eventsource.ErrInvalidConfig, p.name)
		case seen[p.name]:
			return fmt.Errorf("%w: postgres: inline projection %q registered twice", eventsource.ErrInvalidConfig, p.name)
		case p.rm == nil:
			return fmt.Errorf("%w: postgres: inline projection %q has a nil read model", eventsource.ErrInvalidConfig, p.name)
		}
		seen[p.name] = true
	}
	return nil
}

var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// catchUp brings every inline projection up to the visibility bound, once
// per Store: it creates its row and, when IsInitialized says the read model
// is not there, the read model (from position 0, in the same transaction),
// then applies what the global log shows after its position, a batch per
// transaction that holds the row and moves it.
func (s *Store) catchUp(ctx context.Context) error {
	if len(s.cfg.inline) == 0 || s.caughtUp.Load() {
		return nil
	}
	s.catchMu.Lock()
	defer s.catchMu.Unlock()
	if s.caughtUp.Load() {
		return nil
	}
	for _, p := range s.cfg.inline {
		if err := pgx.BeginTxFunc(ctx, s.pool, readCommitted, func(tx pgx.Tx) error { return s.initInline(ctx, tx, p) }); err != nil {
			return err
		}
		for done := false; !done; {
			err := pgx.BeginTxFunc(ctx, s.pool, readCommitted, func(tx pgx.Tx) (err error) {
				done, err = s.catchUpBatch(ctx, tx, p)
				return err
			})
			if err != nil {
				return err
			}
		}
	}
	s.caughtUp.Store(true)
	return nil
}

func (s *Store) initInline(ctx context.Context, tx pgx.Tx, p inline) error {
	if _, err := tx.Exec(ctx, s.q.inlineCreate, p.name); err != nil {
		return wrap(ctx, err, "inline projection %q", p.name)
	}
	if _, err := tx.Exec(ctx, s.q.inlineLock, p.name); err != nil {
		return wrap(ctx, err, "inline projection %q", p.name)
	}
	ok, err := p.rm.IsInitialized(ctx, tx)
	if err != nil {
		return fmt.Errorf("%w: postgres: inline projection %q: IsInitialized: %w", eventsource.ErrInlineProjection, p.name, err)
	}
	if ok {
		return nil
	}
	if err := p.rm.Init(ctx, tx); err != nil {
		return fmt.Errorf("%w: postgres: inline projection %q: Init: %w", eventsource.ErrInlineProjection, p.name, err)
	}
	// A read model that was not there has seen nothing.
	if _, err := tx.Exec(ctx, s.q.inlineReset, p.name); err != nil {
		return wrap(ctx, err, "inline projection %q", p.name)
	}
	return nil
}

// catchUpBatch applies, under p's row lock, one batch of what p has not
// seen below the visibility bound, moves p's position, and reports whether
// p is at the bound.
func (s *Store) catchUpBatch(ctx context.Context, tx pgx.Tx, p inline) (bool, error) {
	if _, err := tx.Exec(ctx, s.q.inlineLock, p.name); err != nil {
		return false, wrap(ctx, err, "inline projection %q", p.name)
	}
	st, err := s.inlineState(ctx, tx, p.name, "", 0)
	if err != nil {
		return false, wrap(ctx, err, "inline projection %q", p.name)
	}
	done, err := s.fillGap(ctx, tx, p, &st, 1)
	if err != nil {
		var ipe *eventsource.InlineProjectionError
		if errors.As(err, &ipe) {
			return false, fmt.Errorf("%w: postgres: inline projection %q: catching up from position %d: %w", eventsource.ErrInlineProjection, p.name, st.position, ipe.Err)
		}
		return false, err
	}
	return done, nil
}

// inlineState is what an append reads of a projection (inlineStateSQL).
type inlineState struct {
	position int64     // the projection's position; -1 without a row
	bound    int64     // the statement's visibility bound
	now      time.Time // the transaction's now(): the appended records' recorded_at
	rc       bool      // the transaction is READ COMMITTED
	gap      bool      // a record below the bound is neither applied nor retired
	walk     bool      // the stream's version before the append is not applied
}

func (s *Store) inlineState(ctx context.Context, tx pgx.Tx, name, stream string, firstVersion int64) (inlineState, error) {
	var st inlineState
	err := tx.QueryRow(ctx, s.q.inlineState, name, stream, firstVersion).Scan(&st.position, &st.bound, &st.now, &st.rc, &st.gap, &st.walk)
	return st, err
}

// fillGap applies, in batches, what the global log shows below st.bound
// that p has neither applied nor seen retired, from p's position on, and
// moves p's position past it. Callers hold p's row lock. With max > 0 it
// stops after max batches and reports whether it reached the bound.
func (s *Store) fillGap(ctx context.Context, tx pgx.Tx, p inline, st *inlineState, max int) (bool, error) {
	for n := 0; max <= 0 || n < max; n++ {
		recs, err := s.inlineRecords(ctx, tx, s.q.inlineGap, p.name, st.position, s.cfg.batch, st.bound)
		if err != nil {
			return false, wrap(ctx, err, "inline projection %q", p.name)
		}
		to, done := st.bound, len(recs) < s.cfg.batch
		if len(recs) > 0 {
			if err := p.rm.Apply(ctx, tx, recs); err != nil {
				return false, &eventsource.InlineProjectionError{Projection: p.name, Err: err}
			}
			if !done {
				to = int64(recs[len(recs)-1].Position) + 1
			}
		}
		if to > st.position {
			if _, err := tx.Exec(ctx, s.q.inlineMove, p.name, to); err != nil {
				return false, wrap(ctx, err, "inline projection %q", p.name)
			}
			st.position = to
		}
		if done {
			return true, nil
		}
	}
	return false, nil
}

func (s *Store) inlineRecords(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]eventsource.Record, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []eventsource.Record
	for rows.Next() {
		var r eventsource.Record
		if err := scanRecord(rows, &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// applyInline runs the inline projections in the transaction of an append
// whose records (a, at res) it has just inserted. For each projection, in
// order:
//
//  1. One statement reads its position, the visibility bound, and whether
//     anything needs applying before the append: a record below the bound
//     that is neither applied (below the position, or in a range of
//     {inline_applied}) nor retired, or the stream's previous version
//     unapplied (appended without the option, by a transaction newer than
//     the bound).
//  2. If so, under the projection's row lock (FOR UPDATE: waits for
//     another append doing the same, and reads again after it), it applies
//     those records below the bound and moves the position to the bound;
//     then the stream's unapplied versions just before the append (walking
//     back from it), marking each applied.
//  3. It applies the append's records, built as a read returns them, and
//     records their range as applied, committed with them.
//  4. On the fast path, in READ COMMITTED, it moves the position to the
//     bound of step 1 (nothing below it was left to apply) and drops the
//     ranges below it, if no other transaction holds the row (SKIP
//     LOCKED): one append at a time moves it, and none waits for it.
func (s *Store) applyInline(ctx context.Context, tx pgx.Tx, a *appendArgs, res eventsource.AppendResult) error {
	if len(s.cfg.inline) == 0 {
		return nil
	}
	var stored []eventsource.Record
	for _, p := range s.cfg.inline {
		st, err := s.inlineState(ctx, tx, p.name, a.stream, res.FirstVersion)
		if err != nil {
			return wrap(ctx, err, "append to %q: inline projection %q", a.stream, p.name)
		}
		locked := st.position < 0 || st.gap || st.walk
		if locked {
			if err := s.catchUpInTx(ctx, tx, p, a.stream, res.FirstVersion, &st); err != nil {
				return err
			}
		}
		if stored == nil {
			stored = storedRecords(a, res, st.now)
		}
		if err := p.rm.Apply(ctx, tx, stored); err != nil {
			return &eventsource.InlineProjectionError{Projection: p.name, Stream: a.stream, Err: err}
		}
		b := &pgx.Batch{}
		b.Queue(s.q.inlineMark, p.name, int64(res.FirstPosition), int64(res.LastPosition))
		if !locked && st.rc {
			b.Queue(s.q.inlineAdvance, p.name, st.bound)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return wrap(ctx, err, "append to %q: inline projection %q", a.stream, p.name)
		}
	}
	return nil
}

// catchUpInTx is step 2 of applyInline: it locks p's row, reads the state
// again, applies what lies below the bound and the stream's unapplied
// versions before firstVersion.
func (s *Store) catchUpInTx(ctx context.Context, tx pgx.Tx, p inline, stream string, firstVersion int64, st *inlineState) error {
	b := &pgx.Batch{}
	b.Queue(s.q.inlineCreate, p.name)
	b.Queue(s.q.inlineLock, p.name)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return wrap(ctx, err, "append to %q: inline projection %q: lock", stream, p.name)
	}
	var err error
	if *st, err = s.inlineState(ctx, tx, p.name, stream, firstVersion); err != nil {
		return wrap(ctx, err, "append to %q: inline projection %q", stream, p.name)
	}
	if st.gap {
		if _, err := s.fillGap(ctx, tx, p, st, 0); err != nil {
			var ipe *eventsource.InlineProjectionError
			if errors.As(err, &ipe) {
				ipe.Stream = stream
			}
			return err
		}
	}
	if !st.walk {
		return nil
	}
	var from int64
	if err := tx.QueryRow(ctx, s.q.inlineWalk, p.name, stream, firstVersion, st.position).Scan(&from); err != nil {
		return wrap(ctx, err, "append to %q: inline projection %q: walk back", stream, p.name)
	}
	for from < firstVersion {
		recs, err := s.inlineRecords(ctx, tx, s.q.inlineVersions, stream, from, firstVersion, s.cfg.batch)
		if err != nil {
			return wrap(ctx, err, "append to %q: inline projection %q", stream, p.name)
		}
		if len(recs) == 0 {
			break
		}
		if err := p.rm.Apply(ctx, tx, recs); err != nil {
			return &eventsource.InlineProjectionError{Projection: p.name, Stream: stream, Err: err}
		}
		positions := make([]int64, len(recs))
		for i, r := range recs {
			positions[i] = int64(r.Position)
		}
		if _, err := tx.Exec(ctx, s.q.inlineMarkEach, p.name, positions); err != nil {
			return wrap(ctx, err, "append to %q: inline projection %q", stream, p.name)
		}
		from = recs[len(recs)-1].Version + 1
	}
	return nil
}

// storedRecords returns the append's records as a read returns them:
// versions and positions from res (an append's positions are consecutive),
// recorded_at the transaction's now(), Data never nil, Metadata nil when
// empty.
func storedRecords(a *appendArgs, res eventsource.AppendResult, now time.Time) []eventsource.Record {
	out := make([]eventsource.Record, len(a.recs))
	at := now.UTC()
	for i, r := range a.recs {
		var md map[string]string
		if len(r.Metadata) > 0 {
			md = maps.Clone(r.Metadata)
		}
		out[i] = eventsource.Record{
			StreamID: a.stream, Version: res.FirstVersion + int64(i), Position: res.FirstPosition + uint64(i),
			EventID: r.EventID, Type: r.Type, Codec: r.Codec, Data: a.data[i], Metadata: md, RecordedAt: at,
		}
	}
	return out
}

// buildInline builds the statements of inline projections ($1 is always
// the projection's name).
func (q *queries) buildInline() {
	// A record of events e that the projection has applied above its
	// position: the range of {inline_applied} starting at or before it
	// (one backward probe of the key) reaches it.
	const unmarked = `NOT EXISTS (SELECT FROM (SELECT a.last FROM {inline_applied} a WHERE a.name = $1 AND a.first <= e.position
		ORDER BY a.first DESC LIMIT 1) a WHERE a.last >= e.position)`
	// A record of events e the global log shows (readAllSQL's test).
	const shown = `((SELECT NOT EXISTS (SELECT FROM {retention} WHERE ` + activeRule + `)) OR NOT EXISTS (SELECT FROM {retention} r
		WHERE r.stream_id = e.stream_id AND ` + retired + `))`
	r := q.replacer.Replace
	q.inlineCreate = r(`INSERT INTO {inline} (name) VALUES ($1) ON CONFLICT DO NOTHING`)
	q.inlineLock = r(`SELECT position FROM {inline} WHERE name = $1 FOR UPDATE`)
	q.inlineReset = r(`WITH d AS (DELETE FROM {inline_applied} WHERE name = $1) UPDATE {inline} SET position = 0 WHERE name = $1`)
	// $2 stream, $3 the append's first version (0: no stream).
	q.inlineState = r(`SELECT w.position, b.bound, now(), current_setting('transaction_isolation') = 'read committed',
	w.position >= 0 AND EXISTS (SELECT FROM {events} e WHERE e.position >= w.position AND e.position < b.bound AND ` + unmarked + ` AND ` + shown + `),
	$3::bigint > 1 AND EXISTS (SELECT FROM {events} e WHERE e.stream_id = $2 AND e.version = $3::bigint - 1 AND e.position >= w.position
		AND ` + unmarked + ` AND ` + shown + `)
FROM (SELECT coalesce((SELECT position FROM {inline} WHERE name = $1), -1) AS position) w,
	(SELECT ` + bound + ` AS bound) b`)
	// What is to apply from the projection's position $2 on, below the
	// bound $4 (of the state the caller read: the position moves to it,
	// so nothing above it may be applied here), at most $3: readAllSQL's
	// page form (a page by position, then the bound), so the plan is an
	// index scan that stops after a page.
	q.inlineGap = r(`SELECT ` + recordColumns + ` FROM (SELECT ` + recordColumns + ` FROM {events} e
	WHERE e.position >= $2 AND ` + unmarked + ` AND ` + shown + ` ORDER BY e.position LIMIT $3) page
WHERE position < $4 ORDER BY position`)
	// The positions below $2 are applied; the ranges there are no longer
	// needed.
	q.inlineMove = r(`WITH d AS (DELETE FROM {inline_applied} WHERE name = $1 AND first < $2 AND last < $2)
UPDATE {inline} SET position = greatest(position, $2) WHERE name = $1`)
	q.inlineAdvance = r(`WITH l AS (SELECT name FROM {inline} WHERE name = $1 AND position < $2 FOR UPDATE SKIP LOCKED),
u AS (UPDATE {inline} i SET position = $2 FROM l WHERE i.name = l.name RETURNING 1)
DELETE FROM {inline_applied} WHERE name = $1 AND first < $2 AND last < $2 AND EXISTS (SELECT FROM u)`)
	q.inlineMark = r(`INSERT INTO {inline_applied} (name, first, last) VALUES ($1, $2, $3)`)
	q.inlineMarkEach = r(`INSERT INTO {inline_applied} (name, first, last) SELECT $1, p, p FROM unnest($2::bigint[]) AS u(p)`)
	// The first of the unapplied, shown versions of stream $2 right before
	// version $3 (walking back one version at a time, an index probe
	// each, and stopping at the first applied or retired one), $3 when
	// there is none. $4 is the projection's position.
	q.inlineWalk = r(`WITH RECURSIVE walk(version) AS (
	SELECT e.version FROM {events} e WHERE e.stream_id = $2 AND e.version = $3::bigint - 1 AND e.position >= $4
		AND ` + unmarked + ` AND ` + shown + `
	UNION ALL
	SELECT e.version FROM walk JOIN {events} e ON e.stream_id = $2 AND e.version = walk.version - 1
	WHERE e.position >= $4 AND ` + unmarked + ` AND ` + shown + `
)
SELECT coalesce(min(version), $3::bigint) FROM walk`)
	// Versions $2 up to (not including) $3 of stream $1, at most $4.
	q.inlineVersions = r(`SELECT ` + recordColumns + ` FROM {events} WHERE stream_id = $1 AND version >= $2 AND version < $3 ORDER BY version LIMIT $4`)
}

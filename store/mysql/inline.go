package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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
// *eventsource.InlineProjectionError (a deadlock or lock wait timeout in
// Apply is retried with the append, as the store's own are). Several
// inline projections run in the order they are given. A name is 1 to 200
// bytes of UTF-8 without NUL, unique in the store; its position is kept in
// {prefix}inline_projections. Init runs outside any append, in a
// transaction of its own (MySQL commits DDL at once). See the package
// documentation, Inline projections.
func WithInline(name string, rm projection.ReadModel[*sql.Tx]) Option {
	return func(c *config) { c.inline = append(c.inline, inline{name: name, rm: rm}) }
}

// maxInlineName bounds a projection's name, in bytes (the column's size).
const maxInlineName = 200

func validInline(in []inline) error {
	seen := map[string]bool{}
	for _, p := range in {
		switch {
		case p.name == "" || len(p.name) > maxInlineName || !utf8.ValidString(p.name):
			return fmt.Errorf("%w: mysql: inline projection name %q: want 1 to %d bytes of UTF-8", eventsource.ErrInvalidConfig, p.name, maxInlineName)
		case strings.IndexByte(p.name, 0) >= 0:
			return fmt.Errorf("%w: mysql: inline projection name %q holds a NUL byte", eventsource.ErrInvalidConfig, p.name)
		case seen[p.name]:
			return fmt.Errorf("%w: mysql: inline projection %q registered twice", eventsource.ErrInvalidConfig, p.name)
		case p.rm == nil:
			return fmt.Errorf("%w: mysql: inline projection %q has a nil read model", eventsource.ErrInvalidConfig, p.name)
		}
		seen[p.name] = true
	}
	return nil
}

// catchUp brings every inline projection up to the head of the log, once
// per Store: it creates its position row and, when IsInitialized says the
// read model is not there, its tables (from position 0), then applies what
// the global log shows after its position, a batch per transaction that
// also moves the position. Appends keep the projections current after it.
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
	s.caughtUp.Store(true)
	return nil
}

// initInline creates p's position row, and its read model when it is not
// there, under a named lock (per database, prefix and projection), so that
// processes starting together init it once. Init runs in a transaction of
// its own, and MySQL commits its DDL at once, so the position goes back to
// 0 first: an Init interrupted half-way is found again not initialized.
func (s *Store) initInline(ctx context.Context, p inline) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("mysql: inline projection %q: %w", p.name, err)
	}
	defer conn.Close()
	const lockName = "CONCAT('eventsource:inline:', SHA1(CONCAT(DATABASE(), '.', ?, '.', ?)))"
	var got *int64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+lockName+", 60)", s.cfg.prefix, p.name).Scan(&got); err != nil {
		return fmt.Errorf("mysql: inline projection %q: take its lock: %w", p.name, err)
	}
	if got == nil || *got != 1 {
		return fmt.Errorf("mysql: inline projection %q: take its lock: timed out after 60s", p.name)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK("+lockName+")", s.cfg.prefix, p.name)
	}()
	if _, err := conn.ExecContext(ctx, s.q.inlineCreate, p.name); err != nil {
		return fmt.Errorf("mysql: inline projection %q: %w", p.name, err)
	}
	var ok bool
	if err := inTx(ctx, conn, func(tx *sql.Tx) (err error) {
		ok, err = p.rm.IsInitialized(ctx, tx)
		return err
	}); err != nil {
		return fmt.Errorf("%w: mysql: inline projection %q: IsInitialized: %w", eventsource.ErrInlineProjection, p.name, err)
	}
	if ok {
		return nil
	}
	if _, err := conn.ExecContext(ctx, s.q.inlineReset, p.name); err != nil {
		return fmt.Errorf("mysql: inline projection %q: %w", p.name, err)
	}
	if err := inTx(ctx, conn, func(tx *sql.Tx) error { return p.rm.Init(ctx, tx) }); err != nil {
		return fmt.Errorf("%w: mysql: inline projection %q: Init: %w", eventsource.ErrInlineProjection, p.name, err)
	}
	return nil
}

func inTx(ctx context.Context, conn *sql.Conn, fn func(*sql.Tx) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// catchUpBatch applies one batch of what p has not seen, in a transaction
// that holds p's row (so appends with p wait for it, and two catch-ups take
// turns), and reports whether p is at the head. Its read view is made after
// the lock, and holds a prefix of the log (see Global order): every
// position up to the counter it reads is visible, or scavenged.
func (s *Store) catchUpBatch(ctx context.Context, p inline) (done bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("mysql: inline projection %q: %w", p.name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var from, head uint64
	if err := tx.QueryRowContext(ctx, s.q.inlineLock, p.name).Scan(&from); err != nil {
		return false, fmt.Errorf("mysql: inline projection %q: %w", p.name, err)
	}
	if err := tx.QueryRowContext(ctx, s.q.head).Scan(&head); err != nil {
		return false, fmt.Errorf("mysql: inline projection %q: %w", p.name, err)
	}
	if from >= head {
		return true, tx.Commit()
	}
	recs, err := s.inlineBatch(ctx, tx, from, head+1)
	if err != nil {
		return false, fmt.Errorf("mysql: inline projection %q: %w", p.name, err)
	}
	done = len(recs) < s.cfg.batch
	to := head // a short batch is the end: what it did not show is retired or scavenged
	if len(recs) > 0 {
		if err := p.rm.Apply(ctx, tx, recs); err != nil {
			return false, fmt.Errorf("%w: mysql: inline projection %q: catching up after position %d: %w", eventsource.ErrInlineProjection, p.name, from, err)
		}
		if !done {
			to = recs[len(recs)-1].Position
		}
	}
	if _, err := tx.ExecContext(ctx, s.q.inlineMove, to, p.name); err != nil {
		return false, fmt.Errorf("mysql: inline projection %q: %w", p.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("mysql: inline projection %q: %w", p.name, err)
	}
	return done, nil
}

// inlineBatch reads, in tx, up to a batch of the records the global log
// shows after position from and before position before, in order.
func (s *Store) inlineBatch(ctx context.Context, tx *sql.Tx, from, before uint64) ([]eventsource.Record, error) {
	rows, err := tx.QueryContext(ctx, s.q.inlineRecords, from+1, before, s.cfg.batch)
	if err != nil {
		return nil, err
	}
	return scanRecords(rows, min(s.cfg.batch, 64))
}

// applyInline runs the inline projections in the append's transaction,
// which holds the position counter and has inserted the records at
// positions first to last. Each projection's row is locked (after the
// counter: the order every append takes them in); the records between its
// position and first were appended without the option, have committed
// (appends take the counter in turn) and are visible to this
// transaction's read view (takePositions checked it), so they are applied
// first, then the append's own, read back as a read returns them.
func (s *Store) applyInline(ctx context.Context, tx *sql.Tx, stream string, first, last uint64) error {
	if len(s.cfg.inline) == 0 {
		return nil
	}
	rows, err := tx.QueryContext(ctx, s.q.inlineOwn, first, last)
	if err != nil {
		return err
	}
	stored, err := scanRecords(rows, int(last-first+1))
	if err != nil {
		return err
	}
	if len(stored) != int(last-first+1) {
		return fmt.Errorf("mysql: append to %q: read back %d of its %d records", stream, len(stored), last-first+1)
	}
	for _, p := range s.cfg.inline {
		var from uint64
		if err := tx.QueryRowContext(ctx, s.q.inlineLock, p.name).Scan(&from); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("mysql: inline projection %q has no position row", p.name)
			}
			return err
		}
		for from+1 < first {
			gap, err := s.inlineBatch(ctx, tx, from, first)
			if err != nil {
				return err
			}
			if len(gap) > 0 {
				if err := p.rm.Apply(ctx, tx, gap); err != nil {
					return &eventsource.InlineProjectionError{Projection: p.name, Stream: stream, Err: err}
				}
			}
			if len(gap) < s.cfg.batch {
				break
			}
			from = gap[len(gap)-1].Position
		}
		if err := p.rm.Apply(ctx, tx, stored); err != nil {
			return &eventsource.InlineProjectionError{Projection: p.name, Stream: stream, Err: err}
		}
		if _, err := tx.ExecContext(ctx, s.q.inlineMove, last, p.name); err != nil {
			return err
		}
	}
	return nil
}

package pgcheckpoint

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/storekit"
)

// Store is a projection.TxCheckpointStore[pgx.Tx] on PostgreSQL. It is safe for
// concurrent use, also by several processes sharing the table.
type Store struct {
	pool   *pgxpool.Pool
	prefix string
	schema string
	table  string // quoted, schema-qualified

	createMu sync.Mutex
	created  bool
}

var _ projection.TxCheckpointStore[pgx.Tx] = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithTablePrefix sets the prefix of the table ("es_" by default, so the
// table is es_projections). It must be at most 30 ASCII letters, digits and
// underscores.
func WithTablePrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// WithSchema puts the table in the named schema instead of the connection's
// search_path; the schema is created on first use when it is missing. The
// name must be 1..63 ASCII letters, digits and underscores, not starting
// with a digit. A read model that shares transactions with the store may
// live in any schema of the same database.
func WithSchema(name string) Option { return func(s *Store) { s.schema = name } }

var (
	prefixRE = regexp.MustCompile(`^[A-Za-z0-9_]{0,30}$`)
	schemaRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
)

// New returns a Store on pool, which the caller owns and closes after the
// store. New does no I/O; the table is created on first use. A bad option
// is an error wrapping eventsource.ErrInvalidConfig.
func New(pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: pgcheckpoint: nil pool", eventsource.ErrInvalidConfig)
	}
	s := &Store{pool: pool, prefix: "es_"}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	if !prefixRE.MatchString(s.prefix) {
		return nil, fmt.Errorf("%w: pgcheckpoint: table prefix %q: want at most 30 ASCII letters, digits and underscores", eventsource.ErrInvalidConfig, s.prefix)
	}
	if s.schema != "" && !schemaRE.MatchString(s.schema) {
		return nil, fmt.Errorf("%w: pgcheckpoint: schema %q: want 1..63 ASCII letters, digits and underscores, not starting with a digit", eventsource.ErrInvalidConfig, s.schema)
	}
	if s.schema == "" {
		s.table = pgx.Identifier{s.prefix + "projections"}.Sanitize()
	} else {
		s.table = pgx.Identifier{s.schema, s.prefix + "projections"}.Sanitize()
	}
	return s, nil
}

// createLock is the key of the transaction-scoped advisory lock taken around
// the CREATE statements: concurrent CREATE TABLE IF NOT EXISTS of one table
// can fail on a unique index of the catalog, so creators take turns. Creation
// happens once per process, so one key for every schema and prefix is enough.
const createLock int64 = 0x6573706a63747273 // "espjctrs"

// ensure creates the schema (when WithSchema names a missing one) and the
// table, once per Store.
func (s *Store) ensure(ctx context.Context) error {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if s.created {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, createLock); err != nil {
			return err
		}
		if s.schema != "" {
			// Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE
			// privilege on the database even when the schema exists.
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, s.schema).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{s.schema}.Sanitize()); err != nil {
					return err
				}
			}
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.table+` (
			name        text PRIMARY KEY,
			position    bigint NOT NULL DEFAULT 0,
			state       bytea,
			status      text NOT NULL DEFAULT '',
			error       text NOT NULL DEFAULT '',
			faulted_at  bigint NOT NULL DEFAULT 0,
			skipped     bigint[],
			request     text NOT NULL DEFAULT '',
			owner       text NOT NULL DEFAULT '',
			lease_until timestamptz,
			updated_at  timestamptz,
			progress    bytea
		)`)
		if err != nil {
			return err
		}
		// Tables created before checkpoints kept progress (parallel
		// projectors, digests, parking) get the column. Looked up first:
		// ALTER TABLE … IF NOT EXISTS would still wait for an exclusive
		// lock on the table, behind every running projector's transaction.
		var has bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_attribute
			WHERE attrelid = to_regclass($1) AND attname = 'progress' AND NOT attisdropped)`, s.table).Scan(&has); err != nil {
			return err
		}
		if !has {
			_, err = tx.Exec(ctx, `ALTER TABLE `+s.table+` ADD COLUMN IF NOT EXISTS progress bytea`)
		}
		return err
	})
	if err != nil {
		return wrap(ctx, err, "create %s", s.table)
	}
	s.created = true
	return nil
}

// wrap adds what failed to a database error, keeping context errors
// matchable with errors.Is.
func wrap(ctx context.Context, err error, format string, args ...any) error {
	return storekit.Wrap(ctx, err, "pgcheckpoint", format, args...)
}

// queryer is the pool or a transaction.
type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const cols = `name, position, state, status, error, faulted_at, skipped, request, owner, lease_until, updated_at, progress`

// load reads the projection's row, locking it (FOR UPDATE) when lock is
// set; ok is false when there is no row.
func (s *Store) load(ctx context.Context, q queryer, name string, lock bool) (cp projection.Checkpoint, ok bool, err error) {
	// holder: Acquire's test of a live lease, on the same clock.
	query := `SELECT ` + cols + `, CASE WHEN owner <> '' AND lease_until > clock_timestamp() THEN owner ELSE '' END
		FROM ` + s.table + ` WHERE name = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	var pos, faulted int64
	var status, request string
	var skipped []int64
	var until, updated *time.Time
	var prog []byte
	err = q.QueryRow(ctx, query, name).Scan(&cp.Name, &pos, &cp.State, &status, &cp.Error, &faulted, &skipped, &request, &cp.Owner, &until, &updated, &prog, &cp.Holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return projection.Checkpoint{Name: name}, false, nil
	}
	if err != nil {
		return projection.Checkpoint{}, false, wrap(ctx, err, "load %q", name)
	}
	cp.Position, cp.FaultedAt = uint64(pos), uint64(faulted)
	cp.Status, cp.Request = projection.Status(status), projection.Request(request)
	if until != nil {
		cp.LeaseUntil = *until
	}
	if updated != nil {
		cp.UpdatedAt = *updated
	}
	for _, p := range skipped {
		cp.Skipped = append(cp.Skipped, uint64(p))
	}
	if err := projection.UnmarshalProgress(prog, &cp); err != nil {
		return projection.Checkpoint{}, false, err
	}
	return cp, true, nil
}

// Load implements projection.CheckpointStore. A projection never run has a zero
// Checkpoint carrying only its Name. Holder is the owner whose lease is
// unexpired by the database's clock, the clock Acquire judges leases by.
func (s *Store) Load(ctx context.Context, name string) (projection.Checkpoint, error) {
	if err := s.ensure(ctx); err != nil {
		return projection.Checkpoint{}, err
	}
	cp, _, err := s.load(ctx, s.pool, name, false)
	return cp, err
}

// List implements projection.CheckpointLister.
func (s *Store) List(ctx context.Context) ([]projection.Checkpoint, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT name FROM `+s.table+` ORDER BY name`)
	if err != nil {
		return nil, wrap(ctx, err, "list")
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap(ctx, err, "list")
	}
	out := make([]projection.Checkpoint, 0, len(names))
	for _, n := range names {
		cp, ok, err := s.load(ctx, s.pool, n, false)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, cp)
		}
	}
	return out, nil
}

// Acquire implements projection.CheckpointStore. In one transaction it makes sure the
// row exists, locks it, and takes or renews the lease unless another
// owner's lease is unexpired (an error wrapping projection.ErrLeaseHeld).
//
// Lease times are the database's clock (clock_timestamp(), read after the
// row lock is held), not the process's: every instance, on whatever host,
// compares against one clock, so leases need no clock agreement between
// hosts. A lease is free once lease_until <= clock_timestamp().
//
// Once the lease is written, the commit is not cut short by ctx ending (it
// has commitTimeout of its own): a commit interrupted half-way might have
// taken the lease while telling the caller it had not, and the caller,
// seeing an error, would never release it; the projection would then stand
// still for a whole time-to-live.
func (s *Store) Acquire(ctx context.Context, name, owner string, ttl time.Duration) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	return s.inTx(ctx, true, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO `+s.table+` (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, name); err != nil {
			return wrap(ctx, err, "acquire %q", name)
		}
		cur, _, err := s.load(ctx, tx, name, true)
		if err != nil {
			return err
		}
		var taken bool
		err = tx.QueryRow(ctx, `UPDATE `+s.table+`
			SET owner = $2, lease_until = clock_timestamp() + $3 * interval '1 microsecond'
			WHERE name = $1 AND (owner = '' OR owner = $2 OR lease_until IS NULL OR lease_until <= clock_timestamp())
			RETURNING true`, name, owner, ttl.Microseconds()).Scan(&taken)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %q by %q until %s", projection.ErrLeaseHeld, name, cur.Owner, cur.LeaseUntil.Format(time.RFC3339Nano))
		}
		if err != nil {
			return wrap(ctx, err, "acquire %q", name)
		}
		return nil
	})
}

// Release implements projection.CheckpointStore. It does nothing unless owner holds
// the lease.
func (s *Store) Release(ctx context.Context, name, owner string) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `UPDATE `+s.table+` SET owner = '', lease_until = NULL WHERE name = $1 AND owner = $2`, name, owner)
	if err != nil {
		return wrap(ctx, err, "release %q", name)
	}
	return nil
}

// Save implements projection.CheckpointStore: SaveTx in a transaction of its own.
func (s *Store) Save(ctx context.Context, owner string, cp projection.Checkpoint, handled projection.Request) (projection.Request, error) {
	var req projection.Request
	err := s.InTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		req, err = s.SaveTx(ctx, tx, owner, cp, handled)
		return err
	})
	return req, err
}

// SaveTx implements projection.TxCheckpointStore. It locks the projection's row
// (SELECT … FOR UPDATE) in tx before checking the owner, so an instance
// that lost its lease gets an error wrapping projection.ErrLeaseLost and
// cannot commit, and a takeover waits until tx ends. It writes cp's
// Position, State, Status, Error, FaultedAt, Skipped and progress
// (projection.MarshalProgress), clears the pending request if it equals
// handled, and returns the request still pending. Nothing is visible to
// others until the caller commits tx.
func (s *Store) SaveTx(ctx context.Context, tx pgx.Tx, owner string, cp projection.Checkpoint, handled projection.Request) (projection.Request, error) {
	if err := s.ensure(ctx); err != nil {
		return projection.RequestNone, err
	}
	cur, ok, err := s.load(ctx, tx, cp.Name, true)
	if err != nil {
		return projection.RequestNone, err
	}
	if !ok || cur.Owner != owner {
		return projection.RequestNone, fmt.Errorf("%w: %q is held by %q", projection.ErrLeaseLost, cp.Name, cur.Owner)
	}
	req := cur.Request
	if handled != projection.RequestNone && req == handled {
		req = projection.RequestNone
	}
	cp.Request = req
	if err := s.write(ctx, tx, cp); err != nil {
		return projection.RequestNone, err
	}
	return req, nil
}

// LoadTx implements projection.TxCheckpointStore: it inserts the row if it is
// missing (INSERT … ON CONFLICT DO NOTHING) and reads it with SELECT … FOR
// UPDATE, so the row stays locked until tx ends: another LoadTx, SaveTx or
// Acquire of the projection waits for it.
func (s *Store) LoadTx(ctx context.Context, tx pgx.Tx, name string) (projection.Checkpoint, error) {
	if err := s.ensure(ctx); err != nil {
		return projection.Checkpoint{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+s.table+` (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, name); err != nil {
		return projection.Checkpoint{}, wrap(ctx, err, "load %q", name)
	}
	cp, _, err := s.load(ctx, tx, name, true)
	return cp, err
}

// WriteTx implements projection.TxCheckpointStore: it writes what SaveTx
// writes, and cp.Request, whoever holds the lease; the owner and lease are
// left as they are.
func (s *Store) WriteTx(ctx context.Context, tx pgx.Tx, cp projection.Checkpoint) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	return s.write(ctx, tx, cp)
}

// write updates the row of cp.Name with everything but the lease.
func (s *Store) write(ctx context.Context, tx pgx.Tx, cp projection.Checkpoint) error {
	var skipped []int64 // NULL when empty
	for _, p := range cp.Skipped {
		skipped = append(skipped, int64(p))
	}
	prog, err := projection.MarshalProgress(cp)
	if err != nil {
		return fmt.Errorf("pgcheckpoint: save %q: %w", cp.Name, err)
	}
	_, err = tx.Exec(ctx, `UPDATE `+s.table+`
		SET position = $2, state = $3, status = $4, error = $5, faulted_at = $6, skipped = $7, request = $8, progress = $9, updated_at = clock_timestamp()
		WHERE name = $1`,
		cp.Name, int64(cp.Position), cp.State, string(cp.Status), cp.Error, int64(cp.FaultedAt), skipped, string(cp.Request), prog)
	if err != nil {
		return wrap(ctx, err, "save %q", cp.Name)
	}
	return nil
}

// Request implements projection.CheckpointStore, creating the row if it is missing.
func (s *Store) Request(ctx context.Context, name string, r projection.Request) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.table+` (name, request) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET request = EXCLUDED.request`, name, string(r))
	if err != nil {
		return wrap(ctx, err, "request %q of %q", r, name)
	}
	return nil
}

// SetStatus implements projection.CheckpointStore: it sets the status and clears the
// error without a lease, creating the row if it is missing.
func (s *Store) SetStatus(ctx context.Context, name string, st projection.Status) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.table+` (name, status) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET status = EXCLUDED.status, error = ''`, name, string(st))
	if err != nil {
		return wrap(ctx, err, "set status %q of %q", st, name)
	}
	return nil
}

// Delete implements projection.CheckpointStore.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM `+s.table+` WHERE name = $1`, name); err != nil {
		return wrap(ctx, err, "delete %q", name)
	}
	return nil
}

// InTx implements projection.TxCheckpointStore: it runs fn in a transaction of the
// pool (READ COMMITTED, the server's default) and commits if fn returns
// nil, rolling back otherwise. An error of fn while ctx is done also
// matches ctx's error. A commit that fails after ctx ended returns ctx's
// error; the commit may then have happened or not, but the read model's
// writes and the checkpoint written by SaveTx in it did so together.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	// The table first: creating it takes a connection of its own, which a
	// pool of one would not have while fn holds the transaction's.
	if err := s.ensure(ctx); err != nil {
		return err
	}
	return s.inTx(ctx, false, fn)
}

// commitTimeout bounds a commit that ctx does not (Acquire's).
const commitTimeout = 5 * time.Second

// inTx is InTx; with detachCommit the commit ignores ctx's end.
func (s *Store) inTx(ctx context.Context, detachCommit bool, fn func(ctx context.Context, tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return wrap(ctx, err, "begin")
	}
	if err := fn(ctx, tx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			_ = tx.Rollback(ctx) // pgx closes the connection, which ends the transaction
			if !errors.Is(err, ctxErr) {
				err = errors.Join(ctxErr, err)
			}
			return err
		}
		rerr := tx.Rollback(ctx)
		if errors.Is(rerr, pgx.ErrTxClosed) {
			rerr = nil
		}
		return errors.Join(err, rerr)
	}
	if detachCommit {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		defer cancel()
		if err := tx.Commit(cctx); err != nil {
			return wrap(ctx, err, "commit")
		}
		return nil
	}
	if err := tx.Commit(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return wrap(ctx, err, "commit")
	}
	return nil
}

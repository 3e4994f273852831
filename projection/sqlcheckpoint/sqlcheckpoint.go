// Package sqlcheckpoint keeps projection checkpoints and leases in a SQL database
// through database/sql: SQLite and MySQL/MariaDB. It is a
// projection.TxCheckpointStore[*sql.Tx], so a read model in the same database commits
// its writes and its checkpoint in one transaction (exactly once).
//
//	cps, err := sqlcheckpoint.New(db, sqlcheckpoint.SQLite)
//	p := projection.NewProjector("balances", events, cps, &Balances{})
//	err = p.Run(ctx)
//
// Lease times come from the clock of the process that writes them, so the
// instances of one projection need clocks that agree to well within the
// lease time-to-live.
package sqlcheckpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

// Dialect is the SQL flavour of the database.
type Dialect int

const (
	SQLite Dialect = iota + 1 // modernc.org/sqlite
	MySQL                     // go-sql-driver/mysql, MySQL 8 or MariaDB 10.6+
)

// Store is a projection.TxCheckpointStore[*sql.Tx].
type Store struct {
	db      *sql.DB
	dialect Dialect
	table   string
	now     func() time.Time

	once    sync.Mutex
	created bool
}

var (
	_ projection.TxCheckpointStore[*sql.Tx] = (*Store)(nil)
	_ projection.CheckpointLister           = (*Store)(nil)
)

// Option configures a Store.
type Option func(*Store)

// WithTablePrefix sets the prefix of the table ("es_" by default, so the
// table is es_projections).
func WithTablePrefix(p string) Option { return func(s *Store) { s.table = p + "projections" } }

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,50}$`)

// New returns a Store in db. Its table is created on first use.
func New(db *sql.DB, d Dialect, opts ...Option) (*Store, error) {
	if db == nil || (d != SQLite && d != MySQL) {
		return nil, fmt.Errorf("%w: sqlcheckpoint needs a *sql.DB and a dialect", eventsource.ErrInvalidConfig)
	}
	s := &Store{db: db, dialect: d, table: "es_projections", now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if !identifier.MatchString(s.table) {
		return nil, fmt.Errorf("%w: sqlcheckpoint: table name %q", eventsource.ErrInvalidConfig, s.table)
	}
	return s, nil
}

func (s *Store) ensure(ctx context.Context) error {
	s.once.Lock()
	defer s.once.Unlock()
	if s.created {
		return nil
	}
	ddl := `CREATE TABLE IF NOT EXISTS ` + s.table + ` (
		name        VARCHAR(255) NOT NULL PRIMARY KEY,
		position    BIGINT NOT NULL DEFAULT 0,
		state       BLOB,
		status      VARCHAR(32) NOT NULL DEFAULT '',
		error       TEXT,
		faulted_at  BIGINT NOT NULL DEFAULT 0,
		skipped     TEXT,
		request     VARCHAR(32) NOT NULL DEFAULT '',
		owner       VARCHAR(255) NOT NULL DEFAULT '',
		lease_until BIGINT NOT NULL DEFAULT 0,
		updated_at  BIGINT NOT NULL DEFAULT 0,
		progress    BLOB
	)`
	if s.dialect == MySQL {
		ddl = strings.ReplaceAll(ddl, "BLOB", "LONGBLOB") + ` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`
	}
	if _, err := s.db.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("sqlcheckpoint: create %s: %w", s.table, err)
	}
	// Tables created before checkpoints kept progress (parallel projectors,
	// digests, parking) get the column.
	has := `SELECT count(*) FROM pragma_table_info('` + s.table + `') WHERE name = 'progress'`
	add := `ALTER TABLE ` + s.table + ` ADD COLUMN progress BLOB`
	if s.dialect == MySQL {
		has = `SELECT count(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '` + s.table + `' AND column_name = 'progress'`
		add = `ALTER TABLE ` + s.table + ` ADD COLUMN progress LONGBLOB`
	}
	var n int
	if err := s.db.QueryRowContext(ctx, has).Scan(&n); err != nil {
		return fmt.Errorf("sqlcheckpoint: columns of %s: %w", s.table, err)
	}
	if n == 0 {
		if _, err := s.db.ExecContext(ctx, add); err != nil && !strings.Contains(strings.ToLower(err.Error()), "duplicate column") {
			return fmt.Errorf("sqlcheckpoint: add progress to %s: %w", s.table, err)
		}
	}
	s.created = true
	return nil
}

// insertIgnore makes sure the projection's row exists. On MySQL it locks
// the row exclusively at once (INSERT IGNORE would take a shared lock that
// the statements after it must upgrade: two such transactions, or one and a
// concurrent Release, deadlock).
func (s *Store) insertIgnore() string {
	if s.dialect == MySQL {
		return `INSERT INTO ` + s.table + ` (name) VALUES (?) ON DUPLICATE KEY UPDATE name = name`
	}
	return `INSERT INTO ` + s.table + ` (name) VALUES (?) ON CONFLICT (name) DO NOTHING`
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const cols = `name, position, state, status, error, faulted_at, skipped, request, owner, lease_until, updated_at, progress`

func (s *Store) load(ctx context.Context, q execer, name string, lock bool) (projection.Checkpoint, bool, error) {
	query := `SELECT ` + cols + ` FROM ` + s.table + ` WHERE name = ?`
	if lock && s.dialect == MySQL {
		query += ` FOR UPDATE`
	}
	var cp projection.Checkpoint
	var pos, faulted, until, updated int64
	var status, request string
	var errText, skipped sql.NullString
	var prog []byte
	err := q.QueryRowContext(ctx, query, name).Scan(&cp.Name, &pos, &cp.State, &status, &errText, &faulted, &skipped, &request, &cp.Owner, &until, &updated, &prog)
	if errors.Is(err, sql.ErrNoRows) {
		return projection.Checkpoint{Name: name}, false, nil
	}
	if err != nil {
		return cp, false, fmt.Errorf("sqlcheckpoint: load %q: %w", name, err)
	}
	cp.Position, cp.FaultedAt = uint64(pos), uint64(faulted)
	cp.Status, cp.Request, cp.Error = projection.Status(status), projection.Request(request), errText.String
	if until > 0 {
		cp.LeaseUntil = time.Unix(0, until)
	}
	if cp.Owner != "" && s.now().Before(cp.LeaseUntil) {
		cp.Holder = cp.Owner // Acquire's test of a live lease
	}
	if updated > 0 {
		cp.UpdatedAt = time.Unix(0, updated)
	}
	if skipped.Valid && skipped.String != "" {
		if err := json.Unmarshal([]byte(skipped.String), &cp.Skipped); err != nil {
			return cp, false, fmt.Errorf("%w: sqlcheckpoint: skipped positions of %q: %w", eventsource.ErrCorruptData, name, err)
		}
	}
	if err := projection.UnmarshalProgress(prog, &cp); err != nil {
		return cp, false, err
	}
	return cp, true, nil
}

// Load implements projection.CheckpointStore. Holder is the owner whose lease is
// unexpired by this process's clock, the clock Acquire judges leases by.
func (s *Store) Load(ctx context.Context, name string) (projection.Checkpoint, error) {
	if err := s.ensure(ctx); err != nil {
		return projection.Checkpoint{}, err
	}
	cp, _, err := s.load(ctx, s.db, name, false)
	return cp, err
}

// List implements projection.CheckpointLister.
func (s *Store) List(ctx context.Context) ([]projection.Checkpoint, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM `+s.table+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlcheckpoint: list: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlcheckpoint: list: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlcheckpoint: list: %w", err)
	}
	out := make([]projection.Checkpoint, 0, len(names))
	for _, n := range names {
		cp, ok, err := s.load(ctx, s.db, n, false)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, cp)
		}
	}
	return out, nil
}

// Acquire implements projection.CheckpointStore.
func (s *Store) Acquire(ctx context.Context, name, owner string, ttl time.Duration) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	return s.InTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.insertIgnore(), name); err != nil {
			return fmt.Errorf("sqlcheckpoint: acquire %q: %w", name, err)
		}
		cp, _, err := s.load(ctx, tx, name, true)
		if err != nil {
			return err
		}
		now := s.now()
		if cp.Owner != "" && cp.Owner != owner && now.Before(cp.LeaseUntil) {
			return fmt.Errorf("%w: %q by %q until %s", projection.ErrLeaseHeld, name, cp.Owner, cp.LeaseUntil.Format(time.RFC3339))
		}
		_, err = tx.ExecContext(ctx, `UPDATE `+s.table+` SET owner = ?, lease_until = ? WHERE name = ?`, owner, now.Add(ttl).UnixNano(), name)
		if err != nil {
			return fmt.Errorf("sqlcheckpoint: acquire %q: %w", name, err)
		}
		return nil
	})
}

// Release implements projection.CheckpointStore.
func (s *Store) Release(ctx context.Context, name, owner string) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `UPDATE `+s.table+` SET owner = '', lease_until = 0 WHERE name = ? AND owner = ?`, name, owner)
	if err != nil {
		return fmt.Errorf("sqlcheckpoint: release %q: %w", name, err)
	}
	return nil
}

// Save implements projection.CheckpointStore.
func (s *Store) Save(ctx context.Context, owner string, cp projection.Checkpoint, handled projection.Request) (projection.Request, error) {
	var req projection.Request
	err := s.InTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		req, err = s.SaveTx(ctx, tx, owner, cp, handled)
		return err
	})
	return req, err
}

// SaveTx implements projection.TxCheckpointStore. The row is locked (SELECT … FOR
// UPDATE on MySQL; SQLite's write transaction locks the database) before the
// owner is checked, so an instance that lost its lease cannot commit.
func (s *Store) SaveTx(ctx context.Context, tx *sql.Tx, owner string, cp projection.Checkpoint, handled projection.Request) (projection.Request, error) {
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

// LoadTx implements projection.TxCheckpointStore.
func (s *Store) LoadTx(ctx context.Context, tx *sql.Tx, name string) (projection.Checkpoint, error) {
	if err := s.ensure(ctx); err != nil {
		return projection.Checkpoint{}, err
	}
	if _, err := tx.ExecContext(ctx, s.insertIgnore(), name); err != nil {
		return projection.Checkpoint{}, fmt.Errorf("sqlcheckpoint: load %q: %w", name, err)
	}
	cp, _, err := s.load(ctx, tx, name, true)
	return cp, err
}

// WriteTx implements projection.TxCheckpointStore.
func (s *Store) WriteTx(ctx context.Context, tx *sql.Tx, cp projection.Checkpoint) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	return s.write(ctx, tx, cp)
}

func (s *Store) write(ctx context.Context, tx *sql.Tx, cp projection.Checkpoint) error {
	var skipped any
	if len(cp.Skipped) > 0 {
		b, _ := json.Marshal(cp.Skipped)
		skipped = string(b)
	}
	prog, err := projection.MarshalProgress(cp)
	if err != nil {
		return fmt.Errorf("sqlcheckpoint: save %q: %w", cp.Name, err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE `+s.table+` SET position = ?, state = ?, status = ?, error = ?, faulted_at = ?, skipped = ?, request = ?, updated_at = ?, progress = ? WHERE name = ?`,
		int64(cp.Position), cp.State, string(cp.Status), cp.Error, int64(cp.FaultedAt), skipped, string(cp.Request), s.now().UnixNano(), prog, cp.Name)
	if err != nil {
		return fmt.Errorf("sqlcheckpoint: save %q: %w", cp.Name, err)
	}
	return nil
}

// Request implements projection.CheckpointStore.
func (s *Store) Request(ctx context.Context, name string, r projection.Request) error {
	return s.set(ctx, name, `request = ?`, string(r))
}

// SetStatus implements projection.CheckpointStore.
func (s *Store) SetStatus(ctx context.Context, name string, st projection.Status) error {
	return s.set(ctx, name, `status = ?, error = ''`, string(st))
}

func (s *Store) set(ctx context.Context, name, assign string, v any) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	return s.InTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.insertIgnore(), name); err != nil {
			return fmt.Errorf("sqlcheckpoint: %q: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE `+s.table+` SET `+assign+` WHERE name = ?`, v, name); err != nil {
			return fmt.Errorf("sqlcheckpoint: %q: %w", name, err)
		}
		return nil
	})
}

// Delete implements projection.CheckpointStore.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM `+s.table+` WHERE name = ?`, name); err != nil {
		return fmt.Errorf("sqlcheckpoint: delete %q: %w", name, err)
	}
	return nil
}

// InTx implements projection.TxCheckpointStore. The table is created first:
// created from inside the transaction, on another connection, it would wait
// for the transaction's own lock on SQLite (LoadTx as a store's first call,
// ReplayParked from a fresh process).
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(ctx, tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	if err := tx.Commit(); err != nil {
		if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
			return ctx.Err() // database/sql rolled back when ctx ended
		}
		return err
	}
	return nil
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

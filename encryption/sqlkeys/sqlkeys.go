// Package sqlkeys is an encryption.KeyStore in a SQL database reached through
// database/sql: SQLite (modernc.org/sqlite), MySQL/MariaDB
// (go-sql-driver/mysql) and PostgreSQL (pgx's database/sql driver,
// github.com/jackc/pgx/v5/stdlib). The caller opens the *sql.DB and imports
// the driver; this package imports none.
//
//	keys, err := sqlkeys.New(db, sqlkeys.MySQL, sqlkeys.WithTablePrefix("es_"))
//
// Keys live in one table, <prefix>encryption_keys (subject, version,
// material), created on first use. Version 0 of a subject is its tombstone,
// written by Delete before the key rows are deleted; a key written by a
// Current or Rotate that raced a Delete is removed again by that call, so no
// key outlives a Delete. Concurrent first uses of a subject, in one process
// or many, agree on one key: the primary key (subject, version) lets one
// insert win, and the others read what it wrote.
package sqlkeys

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/encryption"
)

// Dialect says which SQL database db talks to.
type Dialect int

const (
	SQLite Dialect = iota + 1
	MySQL
	Postgres
)

// Store is a KeyStore in a SQL table. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect Dialect
	prefix  string
	master  *encryption.MasterKey
	table   string

	mu       sync.Mutex
	migrated bool
}

// Option configures a Store.
type Option func(*Store)

// WithTablePrefix sets the prefix of the table's name ("es_" by default):
// letters, digits and underscores.
func WithTablePrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// WithMasterKey wraps every key with m before it is stored, so the table
// alone decrypts nothing. Without it keys are stored as they are. A store
// must always be opened with the master key it was written with.
func WithMasterKey(m *encryption.MasterKey) Option { return func(s *Store) { s.master = m } }

var validPrefix = regexp.MustCompile(`^[A-Za-z0-9_]{0,40}$`)

// New returns a key store over db, which talks the given dialect. It does no
// I/O: the table is created on first use (or by Migrate).
func New(db *sql.DB, d Dialect, opts ...Option) (*Store, error) {
	s := &Store{db: db, dialect: d, prefix: "es_"}
	for _, o := range opts {
		o(s)
	}
	switch {
	case db == nil:
		return nil, fmt.Errorf("%w: sqlkeys: nil *sql.DB", eventsource.ErrInvalidConfig)
	case d < SQLite || d > Postgres:
		return nil, fmt.Errorf("%w: sqlkeys: unknown dialect %d", eventsource.ErrInvalidConfig, d)
	case !validPrefix.MatchString(s.prefix):
		return nil, fmt.Errorf("%w: sqlkeys: table prefix %q (letters, digits, underscores)", eventsource.ErrInvalidConfig, s.prefix)
	}
	s.table = s.prefix + "encryption_keys"
	return s, nil
}

// Migrate creates the table if it does not exist. Current, Key, Rotate and
// Delete call it on first use.
func (s *Store) Migrate(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.migrated {
		return nil
	}
	var ddl string
	switch s.dialect {
	case SQLite:
		ddl = `CREATE TABLE IF NOT EXISTS ` + s.table + ` (subject TEXT NOT NULL, version INTEGER NOT NULL, material BLOB, PRIMARY KEY (subject, version))`
	case MySQL: // VARBINARY: subjects compare byte for byte, not by collation
		ddl = "CREATE TABLE IF NOT EXISTS `" + s.table + "` (subject VARBINARY(255) NOT NULL, version BIGINT NOT NULL, material VARBINARY(255), PRIMARY KEY (subject, version))"
	case Postgres:
		ddl = `CREATE TABLE IF NOT EXISTS ` + s.table + ` (subject TEXT NOT NULL, version BIGINT NOT NULL, material BYTEA, PRIMARY KEY (subject, version))`
	}
	if _, err := s.db.ExecContext(ctx, ddl); err != nil {
		// Concurrent CREATE TABLE IF NOT EXISTS can still race in
		// PostgreSQL's catalog; the table exists if another won.
		if _, err2 := s.db.ExecContext(ctx, s.q(`SELECT 1 FROM `+s.table+` WHERE version = ?`), -1); err2 != nil {
			return fmt.Errorf("sqlkeys: create table %s: %w", s.table, err)
		}
	}
	s.migrated = true
	return nil
}

// q rewrites ? placeholders for the dialect.
func (s *Store) q(query string) string {
	if s.dialect == MySQL {
		query = strings.ReplaceAll(query, " "+s.table, " `"+s.table+"`")
	}
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *Store) begin(ctx context.Context, subject string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := encryption.ValidateSubject(subject); err != nil {
		return err
	}
	return s.Migrate(ctx)
}

// Current implements encryption.KeyStore.
func (s *Store) Current(ctx context.Context, subject string) (encryption.Key, error) {
	if err := s.begin(ctx, subject); err != nil {
		return encryption.Key{}, err
	}
	k, found, err := s.latest(ctx, subject)
	if err != nil || found {
		return k, err
	}
	return s.insertNext(ctx, subject, 0, true)
}

// Rotate implements encryption.KeyStore.
func (s *Store) Rotate(ctx context.Context, subject string) (encryption.Key, error) {
	if err := s.begin(ctx, subject); err != nil {
		return encryption.Key{}, err
	}
	for {
		k, _, err := s.latest(ctx, subject)
		if err != nil {
			return encryption.Key{}, err
		}
		nk, err := s.insertNext(ctx, subject, k.Version, false)
		if errors.Is(err, errTaken) {
			continue // another Rotate took that version
		}
		return nk, err
	}
}

var errTaken = errors.New("sqlkeys: version taken")

// insertNext stores version after+1. When another writer stored it first,
// firstUse returns that writer's key; otherwise the result is errTaken.
func (s *Store) insertNext(ctx context.Context, subject string, after uint32, firstUse bool) (encryption.Key, error) {
	k, err := encryption.NewKey(after + 1)
	if err != nil {
		return encryption.Key{}, err
	}
	stored := k.Material
	if s.master != nil {
		if stored, err = s.master.Wrap(subject, k); err != nil {
			return encryption.Key{}, err
		}
	}
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO `+s.table+` (subject, version, material) VALUES (?, ?, ?)`), subject, int64(k.Version), stored)
	if err != nil {
		// A driver-neutral way to tell a lost race from a failure: look.
		got, found, err2 := s.version(ctx, subject, k.Version)
		if err2 != nil {
			return encryption.Key{}, err2
		}
		if !found {
			if ctx.Err() != nil {
				return encryption.Key{}, ctx.Err()
			}
			return encryption.Key{}, fmt.Errorf("sqlkeys: store key version %d of subject %q: %w", k.Version, subject, err)
		}
		if firstUse {
			return got, nil
		}
		return encryption.Key{}, errTaken
	}
	// A Delete may have written its tombstone after we read and before we
	// inserted: then take our key out again.
	var one int
	err = s.db.QueryRowContext(ctx, s.q(`SELECT 1 FROM `+s.table+` WHERE subject = ? AND version = 0`), subject).Scan(&one)
	switch {
	case err == nil:
		if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM `+s.table+` WHERE subject = ? AND version > 0`), subject); err != nil {
			return encryption.Key{}, fmt.Errorf("sqlkeys: delete keys of subject %q: %w", subject, err)
		}
		return encryption.Key{}, &encryption.ShreddedError{Subject: subject}
	case !errors.Is(err, sql.ErrNoRows):
		return encryption.Key{}, fmt.Errorf("sqlkeys: check subject %q: %w", subject, err)
	}
	return k, nil
}

// latest returns the newest key of subject (found false when it has none),
// or a *ShreddedError.
func (s *Store) latest(ctx context.Context, subject string) (encryption.Key, bool, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT version, material FROM `+s.table+
		` WHERE subject = ? AND (version = 0 OR version = (SELECT MAX(version) FROM `+s.table+` WHERE subject = ?)) ORDER BY version`),
		subject, subject)
	if err != nil {
		return encryption.Key{}, false, fmt.Errorf("sqlkeys: read keys of subject %q: %w", subject, err)
	}
	return s.scan(rows, subject)
}

// version returns one version of subject's key, or a *ShreddedError.
func (s *Store) version(ctx context.Context, subject string, v uint32) (encryption.Key, bool, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT version, material FROM `+s.table+
		` WHERE subject = ? AND version IN (0, ?) ORDER BY version`), subject, int64(v))
	if err != nil {
		return encryption.Key{}, false, fmt.Errorf("sqlkeys: read keys of subject %q: %w", subject, err)
	}
	return s.scan(rows, subject)
}

func (s *Store) scan(rows *sql.Rows, subject string) (encryption.Key, bool, error) {
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return encryption.Key{}, false, fmt.Errorf("sqlkeys: read keys of subject %q: %w", subject, err)
		}
		return encryption.Key{}, false, nil
	}
	var v int64
	var mat []byte
	if err := rows.Scan(&v, &mat); err != nil {
		return encryption.Key{}, false, fmt.Errorf("sqlkeys: read keys of subject %q: %w", subject, err)
	}
	if v == 0 {
		return encryption.Key{}, false, &encryption.ShreddedError{Subject: subject}
	}
	if v < 0 || v > 1<<32-1 {
		return encryption.Key{}, false, fmt.Errorf("%w: sqlkeys: subject %q has key version %d", eventsource.ErrCorruptData, subject, v)
	}
	if s.master != nil {
		k, err := s.master.Unwrap(subject, uint32(v), mat)
		return k, err == nil, err
	}
	if len(mat) != encryption.KeySize {
		return encryption.Key{}, false, fmt.Errorf("%w: sqlkeys: key of subject %q version %d has %d bytes", eventsource.ErrCorruptData, subject, v, len(mat))
	}
	return encryption.Key{Version: uint32(v), Material: mat}, true, nil
}

// Key implements encryption.KeyStore.
func (s *Store) Key(ctx context.Context, subject string, version uint32) (encryption.Key, error) {
	if err := s.begin(ctx, subject); err != nil {
		return encryption.Key{}, err
	}
	if version == 0 {
		return encryption.Key{}, &encryption.KeyNotFoundError{Subject: subject, Version: version}
	}
	k, found, err := s.version(ctx, subject, version)
	if err == nil && !found {
		err = &encryption.KeyNotFoundError{Subject: subject, Version: version}
	}
	return k, err
}

// Delete implements encryption.KeyStore: it writes the subject's tombstone,
// then deletes every key row.
func (s *Store) Delete(ctx context.Context, subject string) error {
	if err := s.begin(ctx, subject); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO `+s.table+` (subject, version, material) VALUES (?, 0, NULL)`), subject); err != nil {
		var one int
		if err2 := s.db.QueryRowContext(ctx, s.q(`SELECT 1 FROM `+s.table+` WHERE subject = ? AND version = 0`), subject).Scan(&one); err2 != nil {
			return fmt.Errorf("sqlkeys: write tombstone of subject %q: %w", subject, err)
		}
	}
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM `+s.table+` WHERE subject = ? AND version > 0`), subject); err != nil {
		return fmt.Errorf("sqlkeys: delete keys of subject %q: %w", subject, err)
	}
	return nil
}

var _ encryption.KeyStore = (*Store)(nil)

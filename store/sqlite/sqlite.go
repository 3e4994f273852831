package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/broadcast"
)

// Store is an event store in one SQLite database. Build it with Open or New.
type Store struct {
	db      *sql.DB
	ownDB   bool
	path    string // the file Open opened, for messages; "" for New
	prefix  string
	maxData int
	batch   int
	poll    time.Duration
	log     *slog.Logger
	auto    bool

	migrateMu sync.Mutex
	migrated  bool

	wmu    sync.Mutex // one writer at a time in this process; guards w
	w      *writer
	signal *broadcast.Signal
	q      queries

	inline   []inline // WithInline, in registration order
	caughtUp bool     // the inline projections' catch-up is done; guarded by wmu

	closeOnce sync.Once
}

// Option configures a Store.
type Option func(*Store)

// WithTablePrefix sets the prefix of the store's tables ("es_" by default),
// so several stores can share one database file.
func WithTablePrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// WithMaxDataSize sets the largest Data a record may have
// (eventsource.DefaultMaxData by default).
func WithMaxDataSize(n int) Option { return func(s *Store) { s.maxData = n } }

// WithBatchSize sets how many rows a read fetches per query (1,000 by default).
func WithBatchSize(n int) Option { return func(s *Store) { s.batch = n } }

// WithPollInterval sets how often Notify looks for appends made by other
// processes (250ms by default; 0 turns polling off). Appends through this
// Store wake subscribers at once.
func WithPollInterval(d time.Duration) Option { return func(s *Store) { s.poll = d } }

// WithLogger sets a logger. Silent by default.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// WithoutAutoMigrate stops the store from creating or upgrading its schema on
// first use; call Migrate yourself.
func WithoutAutoMigrate() Option { return func(s *Store) { s.auto = false } }

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,40}$|^$`)

// DSN returns the data source name Open uses for the file at path: WAL
// journal, a 10s busy timeout, synchronous=NORMAL, and transactions that take
// the write lock when they begin. Use it to open a *sql.DB for New.
func DSN(path string) string { return dsn(path, true) }

// dsn is DSN, without switching the file to WAL when wal is false: that
// writes to it, and a store opened WithoutAutoMigrate writes nothing until
// Migrate (which switches it; the mode is kept in the file).
func dsn(path string, wal bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)") // first, so the pragmas below wait too
	if wal {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database file at path and migrates its
// schema, unless WithoutAutoMigrate is given: then nothing is written until
// Migrate is called (Verify checks that the schema is there).
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: sqlite: empty path", eventsource.ErrInvalidConfig)
	}
	s, err := newStore(nil, opts)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(path, s.auto))
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: open: %w", path, err)
	}
	s.db = db
	s.ownDB, s.path = true, path
	// Connect first, so that a path that cannot be opened, or a file that
	// is not a database, is reported as such rather than as a migration.
	if err := s.wrap("open", db.PingContext(ctx)); err != nil {
		db.Close()
		return nil, err
	}
	if s.auto {
		if err := s.Migrate(ctx); err != nil {
			db.Close()
			return nil, err
		}
		s.wmu.Lock()
		err := s.catchUp(ctx)
		s.wmu.Unlock()
		if err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// New returns a store over db, a modernc.org/sqlite database opened with
// DSN(path) (or equivalent pragmas). It does no I/O; the schema is created
// on first use unless WithoutAutoMigrate is given. Close does not close db.
func New(db *sql.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: sqlite: nil *sql.DB", eventsource.ErrInvalidConfig)
	}
	return newStore(db, opts)
}

func newStore(db *sql.DB, opts []Option) (*Store, error) {
	s := &Store{
		db: db, prefix: "es_", maxData: eventsource.DefaultMaxData, batch: 1000,
		poll: 250 * time.Millisecond, auto: true, signal: broadcast.New(),
	}
	for _, o := range opts {
		o(s)
	}
	if err := validInline(s.inline); err != nil {
		return nil, err
	}
	if !identifier.MatchString(s.prefix) {
		return nil, fmt.Errorf("%w: sqlite: table prefix %q (letters, digits and _ only)", eventsource.ErrInvalidConfig, s.prefix)
	}
	if s.batch < 1 {
		s.batch = 1
	}
	if s.maxData <= 0 {
		s.maxData = eventsource.DefaultMaxData
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.q = newQueries(s.prefix)
	return s, nil
}

// Close ends Notify subscriptions and closes the database if Open opened it.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.signal.Close()
		s.wmu.Lock()
		s.dropWriter()
		s.wmu.Unlock()
		if s.ownDB {
			err = s.db.Close()
		}
	})
	return err
}

// DB returns the underlying database, for read models that want to share it.
func (s *Store) DB() *sql.DB { return s.db }

func (s *Store) ready(ctx context.Context) error {
	if !s.auto {
		return nil
	}
	s.migrateMu.Lock()
	done := s.migrated
	s.migrateMu.Unlock()
	if done {
		return nil
	}
	return s.Migrate(ctx)
}

// wrap turns a driver error into one a caller can act on.
func (s *Store) wrap(op string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "database is closed") {
		return fmt.Errorf("%s: %s: %w: %w", s.label(), op, eventsource.ErrClosed, err)
	}
	return fmt.Errorf("%s: %s: %w", s.label(), op, err)
}

// label starts the store's messages: "sqlite" and the file's path when
// Open opened it.
func (s *Store) label() string {
	if s.path == "" {
		return "sqlite"
	}
	return "sqlite " + s.path
}

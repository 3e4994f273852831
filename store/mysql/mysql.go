package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/broadcast"
)

// Store is an eventsource.Store on MySQL or MariaDB. Build it with New or
// Open. It is safe for concurrent use. Besides the core contract it
// implements eventsource.Notifier (by polling), eventsource.HeadReader,
// eventsource.StreamLister and eventsource.StreamDeleter.
type Store struct {
	db     *sql.DB
	ownsDB bool
	cfg    config
	cfgErr error
	q      queries
	log    *slog.Logger
	closed atomic.Bool
	signal *broadcast.Signal // fired by this process's appends; Notify also polls

	migrateMu sync.Mutex
	migrated  bool
	onTx      func(connID int64) // tests: told the connection of each append transaction
	packet    atomic.Int64       // bytes an INSERT of events may take; from @@max_allowed_packet
}

type config struct {
	prefix      string
	maxData     int
	batch       int
	poll        time.Duration
	logger      *slog.Logger
	autoMigrate bool
}

// Option configures a Store.
type Option func(*config)

// WithTablePrefix sets the prefix of the store's table names ("es_" by
// default): {prefix}streams, {prefix}events, {prefix}position and
// {prefix}schema_migrations. It may hold ASCII letters, digits and
// underscores, at most 40 of them; anything else makes every call fail with
// eventsource.ErrInvalidConfig.
func WithTablePrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithMaxDataSize sets the largest Data a record may have
// (eventsource.DefaultMaxData by default). Limits lowers it, if needed, to
// what the server's max_allowed_packet holds.
func WithMaxDataSize(n int) Option { return func(c *config) { c.maxData = n } }

// WithBatchSize sets how many records a read fetches per query (1000 by
// default). Between batches no connection is held.
func WithBatchSize(n int) Option { return func(c *config) { c.batch = n } }

// WithPollInterval sets how often a Notify channel polls the head of the
// global log for appends made through other stores or processes (100ms by
// default): MySQL has no LISTEN/NOTIFY. Appends through this Store wake
// its Notify channels at once.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.poll = d } }

// WithLogger sends the store's logs (migrations, retried transactions) to l.
// The store is silent by default.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithoutAutoMigrate stops the store from creating or upgrading its tables
// on first use; call Migrate yourself (or run the embedded migrations with
// your own tool).
func WithoutAutoMigrate() Option { return func(c *config) { c.autoMigrate = false } }

const maxPrefix = 40 // the longest table name, {prefix}schema_migrations, stays within MySQL's 64

func validPrefix(p string) bool {
	if len(p) > maxPrefix {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// New returns a store on db, which the caller keeps owning (Close does not
// close it). It does no I/O: the tables are created on first use, unless
// WithoutAutoMigrate is given. db may use any go-sql-driver/mysql DSN
// settings; parseTime, loc and clientFoundRows do not change the store's
// behaviour. A bad option makes every call fail with
// eventsource.ErrInvalidConfig.
func New(db *sql.DB, opts ...Option) *Store {
	c := config{prefix: "es_", maxData: eventsource.DefaultMaxData, batch: 1000, poll: 100 * time.Millisecond, autoMigrate: true}
	for _, o := range opts {
		o(&c)
	}
	s := &Store{db: db, cfg: c, signal: broadcast.New()}
	s.packet.Store(4 << 20)
	switch {
	case db == nil:
		s.cfgErr = fmt.Errorf("%w: mysql: nil *sql.DB", eventsource.ErrInvalidConfig)
	case !validPrefix(c.prefix):
		s.cfgErr = fmt.Errorf("%w: mysql: table prefix must be at most %d ASCII letters, digits or underscores", eventsource.ErrInvalidConfig, maxPrefix)
	case c.maxData < 0:
		s.cfgErr = fmt.Errorf("%w: mysql: negative max data size", eventsource.ErrInvalidConfig)
	case c.batch < 1:
		s.cfgErr = fmt.Errorf("%w: mysql: batch size %d", eventsource.ErrInvalidConfig, c.batch)
	case c.poll <= 0:
		s.cfgErr = fmt.Errorf("%w: mysql: poll interval %v", eventsource.ErrInvalidConfig, c.poll)
	}
	if c.maxData == 0 {
		s.cfg.maxData = eventsource.DefaultMaxData
	}
	s.log = c.logger
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.cfgErr == nil {
		s.q = newQueries(c.prefix)
	}
	return s
}

// Open connects to the server named by dsn (a go-sql-driver/mysql DSN such
// as "user:pass@tcp(127.0.0.1:3306)/db"), checks the connection and migrates
// the tables (unless WithoutAutoMigrate is given). It turns on
// interpolateParams (one round trip per statement instead of
// prepare/execute) and parseTime. The store owns the connection pool: Close
// closes it.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: mysql: %v", eventsource.ErrInvalidConfig, err)
	}
	cfg.ParseTime = true
	cfg.InterpolateParams = true
	if cfg.Loc == nil {
		cfg.Loc = time.UTC
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: mysql: %v", eventsource.ErrInvalidConfig, err)
	}
	db := sql.OpenDB(connector)
	s := New(db, opts...)
	s.ownsDB = true
	if s.cfgErr != nil {
		db.Close()
		return nil, s.cfgErr
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql: connect to %s: %w", cfg.Addr, err)
	}
	if s.cfg.autoMigrate {
		if err := s.Migrate(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// DB returns the connection pool the store uses.
func (s *Store) DB() *sql.DB { return s.db }

// Close makes every later call fail with eventsource.ErrClosed and closes
// the channels returned by Notify. It closes the connection pool only if
// Open made it.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.signal.Close()
	if s.ownsDB && s.db != nil {
		return s.db.Close()
	}
	return nil
}

// ready is the gate of every call: configuration, closed store, context,
// and the migration on first use.
func (s *Store) ready(ctx context.Context) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	if s.closed.Load() {
		return eventsource.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.cfg.autoMigrate {
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

// queries holds the statements, with table names from the validated prefix.
type queries struct {
	insertStream, updateStreamExact, updateStreamExists, upsertStream, streamVersion string
	takePositions, insertEventsHead, insertEventsRow                                 string
	lockPosition, lastEvent                                                          string
	findIDs                                                                          string
	readStream, readAll                                                              string
	head, listStreams, lockStream, deleteEvents, deleteStream                        string
}

const recordColumns = "position, stream_id, version, event_id, type, codec, data, metadata, recorded_at"

func newQueries(prefix string) queries {
	r := strings.NewReplacer("{streams}", "`"+prefix+"streams`", "{events}", "`"+prefix+"events`", "{position}", "`"+prefix+"position`", "{cols}", recordColumns)
	return queries{
		insertStream:       r.Replace("INSERT INTO {streams} (stream_id, version) VALUES (?, ?)"),
		updateStreamExact:  r.Replace("UPDATE {streams} SET version = version + ? WHERE stream_id = ? AND version = ?"),
		updateStreamExists: r.Replace("UPDATE {streams} SET version = LAST_INSERT_ID(version + ?) WHERE stream_id = ?"),
		upsertStream:       r.Replace("INSERT INTO {streams} (stream_id, version) VALUES (?, ?) ON DUPLICATE KEY UPDATE version = LAST_INSERT_ID(version + ?)"),
		streamVersion:      r.Replace("SELECT version FROM {streams} WHERE stream_id = ?"),
		takePositions:      r.Replace("UPDATE {position} SET position = LAST_INSERT_ID(position + ?) WHERE id = 1"),
		lockPosition:       r.Replace("SELECT position FROM {position} WHERE id = 1 FOR UPDATE"),
		lastEvent:          r.Replace("SELECT COALESCE(MAX(position), 0) FROM {events}"),
		insertEventsHead:   r.Replace("INSERT INTO {events} ({cols}) VALUES "),
		insertEventsRow:    "(?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))",
		findIDs:            r.Replace("SELECT event_id, stream_id, version, position FROM {events} WHERE event_id IN "),
		readStream:         r.Replace("SELECT {cols} FROM {events} WHERE stream_id = ? AND version BETWEEN ? AND ? ORDER BY version LIMIT ?"),
		readAll:            r.Replace("SELECT {cols} FROM {events} WHERE position >= ?"),
		head:               r.Replace("SELECT position FROM {position} WHERE id = 1"),
		listStreams:        r.Replace("SELECT stream_id, version FROM {streams} WHERE stream_id > ? AND LEFT(stream_id, ?) = ? ORDER BY stream_id LIMIT ?"),
		lockStream:         r.Replace("SELECT version FROM {streams} WHERE stream_id = ? FOR UPDATE"),
		deleteEvents:       r.Replace("DELETE FROM {events} WHERE stream_id = ?"),
		deleteStream:       r.Replace("DELETE FROM {streams} WHERE stream_id = ?"),
	}
}

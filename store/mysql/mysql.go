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
// eventsource.StreamLister, eventsource.StreamLifecycle (and so
// StreamDeleter), eventsource.Scavenger, eventsource.SnapshotStore and
// eventsource.Reserver.
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

	catchMu  sync.Mutex  // one inline catch-up at a time
	caughtUp atomic.Bool // the inline projections' catch-up is done
}

type config struct {
	prefix      string
	maxData     int
	batch       int
	poll        time.Duration
	logger      *slog.Logger
	autoMigrate bool
	inline      []inline // WithInline, in registration order
}

// Option configures a Store.
type Option func(*config)

// WithTablePrefix sets the prefix of the store's table names ("es_" by
// default): {prefix}streams, {prefix}events, {prefix}position,
// {prefix}stream_rules, {prefix}snapshots, {prefix}reservations and
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
	default:
		s.cfgErr = validInline(c.inline)
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
		if err := s.catchUp(ctx); err != nil {
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
	insertStream, updateStreamExact, updateStreamExists, upsertStream string
	streamState, advance, advanceWithCut                              string
	takePositions, insertEventsHead, insertEventsRow                  string
	lockPosition, lastEvent                                           string
	findIDs                                                           string
	readStream, readAll                                               string
	head, listStreams                                                 string
	claimStream, lockStream, lockRules, readRules                     string
	insertRules, updateRules, markRuled, deleteSnapshots              string
	ruledStreams, lockScavenge, scavenge                              string
	inlineCreate, inlineReset, inlineLock, inlineMove                 string
	inlineRecords, inlineOwn                                          string
}

const recordColumns = "position, stream_id, version, event_id, type, codec, data, metadata, recorded_at"

// visibleSQL is storekit.Retention.Visible for a record of {events} e whose
// stream's {stream_rules} row, r, is LEFT JOINed (NULL: no rules), at the
// server's clock: the same test for ReadStream, ReadAll and Scavenge. The
// age test is exact: recorded_at and UTC_TIMESTAMP(6) are whole
// microseconds, so their distance is within max_age_ns exactly when it is
// within max_age_ns DIV 1000 microseconds.
const visibleSQL = "(r.stream_id IS NULL OR (e.version >= r.cut AND (r.since IS NULL OR e.recorded_at >= r.since)" +
	" AND (r.max_age_ns = 0 OR TIMESTAMPDIFF(MICROSECOND, e.recorded_at, UTC_TIMESTAMP(6)) <= r.max_age_ns DIV 1000)))"

func newQueries(prefix string) queries {
	r := strings.NewReplacer("{streams}", "`"+prefix+"streams`", "{events}", "`"+prefix+"events`", "{position}", "`"+prefix+"position`",
		"{inline}", "`"+prefix+"inline_projections`",
		"{rules}", "`"+prefix+"stream_rules`", "{snapshots}", "`"+prefix+"snapshots`", "{cols}", recordColumns, "{visible}", visibleSQL)
	q := queries{
		// An append's first statement moves the version of a stream
		// without rules; a ruled stream (and any conflict) takes the
		// way of streamState (see advanceStream).
		insertStream:       r.Replace("INSERT INTO {streams} (stream_id, version) VALUES (?, ?)"),
		updateStreamExact:  r.Replace("UPDATE {streams} SET version = version + ? WHERE stream_id = ? AND version = ? AND NOT ruled"),
		updateStreamExists: r.Replace("UPDATE {streams} SET version = LAST_INSERT_ID(version + ?) WHERE stream_id = ? AND NOT ruled"),
		upsertStream:       r.Replace("INSERT INTO {streams} (stream_id, version) VALUES (?, ?) ON DUPLICATE KEY UPDATE version = IF(ruled, version + 0 * LAST_INSERT_ID(1), LAST_INSERT_ID(version + ?))"),
		streamState: r.Replace("SELECT st.version, st.ruled, r.meta, r.cut, r.max_age_ns, r.since FROM {streams} st " +
			"LEFT JOIN {rules} r ON r.stream_id = st.stream_id WHERE st.stream_id = ? LOCK IN SHARE MODE"),
		advance:          r.Replace("UPDATE {streams} SET version = version + ? WHERE stream_id = ?"),
		advanceWithCut:   r.Replace("UPDATE {streams} st JOIN {rules} r ON r.stream_id = st.stream_id SET st.version = st.version + ?, r.cut = ? WHERE st.stream_id = ?"),
		takePositions:    r.Replace("UPDATE {position} SET position = LAST_INSERT_ID(position + ?) WHERE id = 1"),
		lockPosition:     r.Replace("SELECT position FROM {position} WHERE id = 1 FOR UPDATE"),
		lastEvent:        r.Replace("SELECT COALESCE(MAX(position), 0) FROM {events}"),
		insertEventsHead: r.Replace("INSERT INTO {events} ({cols}) VALUES "),
		insertEventsRow:  "(?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))",
		findIDs:          r.Replace("SELECT event_id, stream_id, version, position FROM {events} WHERE event_id IN "),
		// The stream's row and rules are constant tables (primary-key
		// lookups of a constant, read once while the statement is
		// planned), so the range on (stream_id, version) starts at the
		// cut; the rules come back, with NULL records, even when no
		// record is visible (the stream's version only with rules: a
		// stream without has no holes). No ORDER BY: with it MariaDB sorts the
		// joined rows in a temporary table; ReadStream orders the batch
		// (the range scan yields it in order already).
		readStream: r.Replace("SELECT IF(r.stream_id IS NULL, NULL, st.version), r.cut, COALESCE(e.position, 0), COALESCE(e.version, 0), COALESCE(e.event_id, ''), " +
			"COALESCE(e.type, ''), COALESCE(e.codec, ''), e.data, e.metadata, e.recorded_at FROM {streams} st " +
			"LEFT JOIN {rules} r ON r.stream_id = st.stream_id " +
			"LEFT JOIN {events} e ON e.stream_id = st.stream_id AND e.version BETWEEN GREATEST(?, COALESCE(r.cut, 1)) AND ? AND {visible} " +
			"WHERE st.stream_id = ?"),
		// ReadAll's test of a record's rules costs next to nothing when no
		// stream has rules: the first subquery is not correlated, so it
		// runs once per statement. The second depends on the stream alone,
		// so MariaDB's subquery cache answers it once per stream of the
		// batch; only records of ruled streams run the third. (A LEFT JOIN
		// of {stream_rules} costs an index lookup per record, rules or
		// none: twice the server's CPU time of the plain scan; see
		// BENCHMARKS.md.)
		readAll: r.Replace("SELECT e.position, e.stream_id, e.version, e.event_id, e.type, e.codec, e.data, e.metadata, e.recorded_at " +
			"FROM {events} e WHERE e.position >= ? AND (NOT EXISTS (SELECT 1 FROM {rules}) " +
			"OR NOT EXISTS (SELECT 1 FROM {rules} r WHERE r.stream_id = e.stream_id) " +
			"OR EXISTS (SELECT 1 FROM {rules} r WHERE r.stream_id = e.stream_id AND {visible}))"),
		head: r.Replace("SELECT position FROM {position} WHERE id = 1"),
		listStreams: r.Replace("SELECT st.stream_id, st.version FROM {streams} st LEFT JOIN {rules} r ON r.stream_id = st.stream_id " +
			"WHERE st.stream_id > ? AND LEFT(st.stream_id, ?) = ? AND st.version > 0 AND (r.cut IS NULL OR r.cut <= st.version) ORDER BY st.stream_id LIMIT ?"),
		// Lifecycle writes lock the stream's row (made at version 0 if
		// need be, without a gap lock), then its rules: the order appends
		// take them in.
		claimStream:     r.Replace("INSERT INTO {streams} (stream_id, version) VALUES (?, 0) ON DUPLICATE KEY UPDATE version = version"),
		lockStream:      r.Replace("SELECT version, ruled, UTC_TIMESTAMP(6) FROM {streams} WHERE stream_id = ? FOR UPDATE"),
		lockRules:       r.Replace("SELECT meta, meta_version, cut, max_age_ns, since FROM {rules} WHERE stream_id = ? FOR UPDATE"),
		readRules:       r.Replace("SELECT meta, meta_version, cut FROM {rules} WHERE stream_id = ?"),
		insertRules:     r.Replace("INSERT INTO {rules} (meta, meta_version, cut, max_age_ns, since, stream_id) VALUES (?, ?, ?, ?, ?, ?)"),
		updateRules:     r.Replace("UPDATE {rules} SET meta = ?, meta_version = ?, cut = ?, max_age_ns = ?, since = ? WHERE stream_id = ?"),
		markRuled:       r.Replace("UPDATE {streams} SET ruled = TRUE WHERE stream_id = ?"),
		deleteSnapshots: r.Replace("DELETE FROM {snapshots} WHERE stream_id = ?"),
		ruledStreams:    r.Replace("SELECT stream_id FROM {rules} WHERE stream_id > ? AND (cut > 1 OR max_age_ns > 0 OR since IS NOT NULL) ORDER BY stream_id LIMIT ?"),
		lockScavenge:    r.Replace("SELECT version FROM {streams} WHERE stream_id = ? FOR UPDATE"),
		scavenge:        r.Replace("DELETE e FROM {events} e JOIN {rules} r ON r.stream_id = e.stream_id WHERE e.stream_id = ? AND NOT {visible}"),
		// Inline projections (inline.go).
		inlineCreate: r.Replace("INSERT IGNORE INTO {inline} (name, position) VALUES (?, 0)"),
		inlineReset:  r.Replace("UPDATE {inline} SET position = 0 WHERE name = ?"),
		inlineLock:   r.Replace("SELECT position FROM {inline} WHERE name = ? FOR UPDATE"),
		inlineMove:   r.Replace("UPDATE {inline} SET position = GREATEST(position, ?) WHERE name = ?"),
		inlineOwn:    r.Replace("SELECT {cols} FROM {events} WHERE position BETWEEN ? AND ? ORDER BY position"),
	}
	// What the global log shows in a range of positions: ReadAll's page
	// query with an upper bound. Arguments: from, before, limit.
	q.inlineRecords = q.readAll + " AND e.position < ? ORDER BY e.position LIMIT ?"
	return q
}

package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/broadcast"
	"github.com/eventsource-go/eventsource/internal/jsonmap"
	"github.com/eventsource-go/eventsource/internal/migrate"
	"github.com/eventsource-go/eventsource/internal/page"
	"github.com/eventsource-go/eventsource/storekit"
)

//go:embed migrations/*.sql
var migrations embed.FS

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

// Migrate creates or upgrades the schema. It is safe to call concurrently
// and from several processes (it runs in one write transaction).
func (s *Store) Migrate(ctx context.Context) error {
	s.migrateMu.Lock()
	defer s.migrateMu.Unlock()
	if s.migrated {
		return nil
	}
	files, err := migrate.Load(migrations, "migrations", strings.NewReplacer("{{prefix}}", s.prefix))
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// A new file's first connections race to switch it to WAL, and SQLite
	// may then answer SQLITE_BUSY without waiting: try again a few times.
	for attempt := 1; ; attempt++ {
		err := s.migrateOnce(ctx, files)
		if err == nil {
			s.migrated = true
			return nil
		}
		if !isBusy(err) || attempt == 10 {
			return err
		}
		s.log.DebugContext(ctx, "sqlite: database busy during migration, retrying", slog.Int("attempt", attempt))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
}

func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

func (s *Store) migrateOnce(ctx context.Context, files []migrate.File) error {
	if _, err := s.db.ExecContext(ctx, `PRAGMA journal_mode = WAL`); err != nil {
		return s.wrap("migrate", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("migrate", err)
	}
	defer tx.Rollback()
	table := s.prefix + "schema_migrations"
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return s.wrap("migrate", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM `+table).Scan(&current); err != nil {
		return s.wrap("migrate", err)
	}
	for _, f := range files {
		if f.Version <= current {
			continue
		}
		if _, err := tx.ExecContext(ctx, f.SQL); err != nil {
			return fmt.Errorf("%s: migration %s: %w", s.label(), f.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (version, applied_at) VALUES (?, ?)`, f.Version, time.Now().UnixNano()); err != nil {
			return s.wrap("migrate", err)
		}
		s.log.InfoContext(ctx, "sqlite: applied migration", slog.String("file", f.Name))
	}
	return s.wrap("migrate", tx.Commit())
}

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

func isUnique(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

type queries struct {
	version, insertEvent, byEventID, idsAt, stream, head, list, deleteEvents string
	selectAll                                                                string
}

const columns = `position, stream_id, version, event_id, type, codec, data, metadata, recorded_at`

func newQueries(p string) queries {
	return queries{
		// A stream's version is its newest event's, read from the
		// (stream_id, version) index: no second table to write per append.
		version:      `SELECT coalesce(max(version), 0) FROM ` + p + `events WHERE stream_id = ?`,
		insertEvent:  `INSERT INTO ` + p + `events (stream_id, version, event_id, type, codec, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		byEventID:    `SELECT stream_id, version, position FROM ` + p + `events WHERE event_id = ?`,
		idsAt:        `SELECT event_id, position FROM ` + p + `events WHERE stream_id = ? AND version BETWEEN ? AND ? ORDER BY version`,
		stream:       `SELECT ` + columns + ` FROM ` + p + `events WHERE stream_id = ? AND version BETWEEN ? AND ? ORDER BY version LIMIT ?`,
		selectAll:    `SELECT ` + columns + ` FROM ` + p + `events WHERE position >= ?`,
		head:         `SELECT coalesce(max(position), 0) FROM ` + p + `events`,
		list:         `SELECT stream_id, max(version) FROM ` + p + `events WHERE stream_id > ? AND substr(stream_id, 1, ?) = ? GROUP BY stream_id ORDER BY stream_id LIMIT ?`,
		deleteEvents: `DELETE FROM ` + p + `events WHERE stream_id = ?`,
	}
}

// Append implements eventsource.Store. Appends in one process take turns;
// across processes SQLite's write lock (with the busy timeout) serialises
// them. Either way commit order is position order.
func (s *Store) Append(ctx context.Context, stream string, expected eventsource.ExpectedVersion, records []eventsource.Record) (eventsource.AppendResult, error) {
	recs := slices.Clone(records)
	if err := storekit.ValidateAppend(stream, expected, recs, s.Limits()); err != nil {
		return eventsource.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventsource.AppendResult{}, err
	}
	if err := s.ready(ctx); err != nil {
		return eventsource.AppendResult{}, err
	}
	s.wmu.Lock()
	res, err := s.append(ctx, stream, expected, recs)
	s.wmu.Unlock()
	if err == nil {
		s.signal.Fire()
	}
	return res, err
}

// writer holds the append statements, prepared once on the database (a
// statement prepared on a *sql.Conn would be prepared again by every
// Tx.StmtContext; one prepared on the *sql.DB is cached per connection).
type writer struct {
	version, insert *sql.Stmt
}

func (w *writer) close() {
	for _, st := range []*sql.Stmt{w.version, w.insert} {
		if st != nil {
			st.Close()
		}
	}
}

// writerStmts returns the writer, preparing it on first use. Callers hold wmu.
func (s *Store) writerStmts(ctx context.Context) (*writer, error) {
	if s.w != nil {
		return s.w, nil
	}
	w := &writer{}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{{&w.version, s.q.version}, {&w.insert, s.q.insertEvent}} {
		var err error
		if *p.st, err = s.db.PrepareContext(ctx, p.sql); err != nil {
			w.close()
			return nil, err
		}
	}
	s.w = w
	return w, nil
}

// dropWriter closes the prepared statements. Callers hold wmu.
func (s *Store) dropWriter() {
	if s.w != nil {
		s.w.close()
		s.w = nil
	}
}

// errRetryCheck means the append must be checked against what is stored.
var errRetryCheck = errors.New("check for a retried append")

func (s *Store) append(ctx context.Context, stream string, expected eventsource.ExpectedVersion, recs []eventsource.Record) (eventsource.AppendResult, error) {
	w, err := s.writerStmts(ctx)
	if err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	defer tx.Rollback()
	var current int64
	if err := tx.StmtContext(ctx, w.version).QueryRowContext(ctx, stream).Scan(&current); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	res, err := s.write(ctx, tx, w, stream, expected, current, recs)
	if errors.Is(err, errRetryCheck) {
		tx.Rollback()
		return s.retried(ctx, stream, expected, current, recs)
	}
	if err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	storekit.BeforeCommit(ctx)
	if err := ctx.Err(); err != nil {
		return eventsource.AppendResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	return res, nil
}

func (s *Store) write(ctx context.Context, tx *sql.Tx, w *writer, stream string, expected eventsource.ExpectedVersion, current int64, recs []eventsource.Record) (eventsource.AppendResult, error) {
	if !expected.Matches(current) {
		return eventsource.AppendResult{}, errRetryCheck
	}
	last := current + int64(len(recs))
	stmt := tx.StmtContext(ctx, w.insert)
	now := time.Now().UTC().UnixNano()
	res := eventsource.AppendResult{StreamID: stream, FirstVersion: current + 1, LastVersion: last}
	for i := range recs {
		r := &recs[i]
		md, err := encodeMetadata(r.Metadata)
		if err != nil {
			return eventsource.AppendResult{}, err
		}
		data := r.Data
		if data == nil {
			data = []byte{}
		}
		out, err := stmt.ExecContext(ctx, stream, current+int64(i)+1, r.EventID, r.Type, r.Codec, data, md, now)
		if isUnique(err) {
			return eventsource.AppendResult{}, errRetryCheck
		}
		if err != nil {
			return eventsource.AppendResult{}, err
		}
		pos, err := out.LastInsertId()
		if err != nil {
			return eventsource.AppendResult{}, err
		}
		if i == 0 {
			res.FirstPosition = uint64(pos)
		}
		res.LastPosition = uint64(pos)
	}
	return res, nil
}

// retried decides what an append that could not be written is: an exact
// retry of one already stored (its original result), a duplicate, or a
// version conflict.
func (s *Store) retried(ctx context.Context, stream string, expected eventsource.ExpectedVersion, current int64, recs []eventsource.Record) (eventsource.AppendResult, error) {
	var firstStream string
	var firstVersion int64
	var firstPos uint64
	err := s.db.QueryRowContext(ctx, s.q.byEventID, recs[0].EventID).Scan(&firstStream, &firstVersion, &firstPos)
	if errors.Is(err, sql.ErrNoRows) {
		for i, r := range recs[1:] {
			err := s.db.QueryRowContext(ctx, s.q.byEventID, r.EventID).Scan(&firstStream, &firstVersion, &firstPos)
			if err == nil {
				return eventsource.AppendResult{}, storekit.Duplicate(stream, r.EventID, i+1)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return eventsource.AppendResult{}, s.wrap("append", err)
			}
		}
		return eventsource.AppendResult{}, &eventsource.ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
	}
	if err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	first := eventsource.Record{StreamID: firstStream, Version: firstVersion, Position: firstPos, EventID: recs[0].EventID}
	var following []eventsource.Record
	if firstStream == stream {
		rows, err := s.db.QueryContext(ctx, s.q.idsAt, stream, firstVersion, firstVersion+int64(len(recs))-1)
		if err != nil {
			return eventsource.AppendResult{}, s.wrap("append", err)
		}
		defer rows.Close()
		for v := firstVersion; rows.Next(); v++ {
			r := eventsource.Record{StreamID: stream, Version: v}
			if err := rows.Scan(&r.EventID, &r.Position); err != nil {
				return eventsource.AppendResult{}, s.wrap("append", err)
			}
			following = append(following, r)
		}
		if err := rows.Err(); err != nil {
			return eventsource.AppendResult{}, s.wrap("append", err)
		}
	}
	return storekit.ExactRetry(stream, expected, storekit.EventIDs(recs), first, following)
}

func encodeMetadata(md map[string]string) (any, error) {
	if len(md) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata: %w", eventsource.ErrInvalidEvent, err)
	}
	return string(b), nil
}

func scanRecord(rows *sql.Rows) (eventsource.Record, error) {
	var r eventsource.Record
	var md sql.NullString
	var at int64
	if err := rows.Scan(&r.Position, &r.StreamID, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &md, &at); err != nil {
		return r, err
	}
	if r.Data == nil {
		r.Data = []byte{}
	}
	if err := jsonmap.DecodeMetadata(&r, []byte(md.String)); err != nil {
		return r, err
	}
	r.RecordedAt = time.Unix(0, at).UTC()
	return r, nil
}

// ReadStream implements eventsource.Store.
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
		if from < 1 {
			from = 1
		}
		if to <= 0 {
			to = math.MaxInt64
		}
		s.paginate(ctx, yield, func(after eventsource.Record, first bool) (*sql.Rows, error) {
			next := from
			if !first {
				next = after.Version + 1
			}
			return s.db.QueryContext(ctx, s.q.stream, stream, next, to, s.batch)
		})
	}
}

// ReadAll implements eventsource.Store. The filter is evaluated by SQLite.
func (s *Store) ReadAll(ctx context.Context, from uint64, f eventsource.Filter) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		if err := s.ready(ctx); err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		query, args := s.allQuery(f)
		s.paginate(ctx, yield, func(after eventsource.Record, first bool) (*sql.Rows, error) {
			next := from
			if !first {
				next = after.Position + 1
			}
			return s.db.QueryContext(ctx, query, append([]any{int64(next)}, args...)...)
		})
	}
}

// allQuery builds the global-log query for f. Only placeholders are added
// for the filter's values; the SQL shape depends on their count alone.
func (s *Store) allQuery(f eventsource.Filter) (string, []any) {
	var b strings.Builder
	b.WriteString(s.q.selectAll)
	var args []any
	if len(f.Streams) > 0 || len(f.StreamPrefixes) > 0 {
		var ors []string
		if len(f.Streams) > 0 {
			ors = append(ors, "stream_id IN ("+placeholders(len(f.Streams))+")")
			for _, v := range f.Streams {
				args = append(args, v)
			}
		}
		for _, p := range f.StreamPrefixes {
			ors = append(ors, "substr(stream_id, 1, ?) = ?")
			args = append(args, len([]rune(p)), p)
		}
		b.WriteString(" AND (" + strings.Join(ors, " OR ") + ")")
	}
	if len(f.Types) > 0 {
		b.WriteString(" AND type IN (" + placeholders(len(f.Types)) + ")")
		for _, v := range f.Types {
			args = append(args, v)
		}
	}
	keys := make([]string, 0, len(f.Metadata))
	for k := range f.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(" AND EXISTS (SELECT 1 FROM json_each(metadata) WHERE key = ? AND value = ? AND type = 'text')")
		args = append(args, k, f.Metadata[k])
	}
	b.WriteString(" ORDER BY position LIMIT ?")
	args = append(args, s.batch)
	return b.String(), args
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// paginate runs query for batch after batch (each starting after the last
// record yielded), closing each result set before yielding, so no connection
// is held while the caller works.
func (s *Store) paginate(ctx context.Context, yield func(eventsource.Record, error) bool, query func(after eventsource.Record, first bool) (*sql.Rows, error)) {
	// One slice for every page: page.Seq has yielded a page before it
	// fetches the next.
	batch := make([]eventsource.Record, 0, min(s.batch, 1024))
	page.Seq(s.batch, func(last eventsource.Record, first bool) ([]eventsource.Record, error) {
		rows, err := query(last, first)
		if err != nil {
			return nil, s.wrap("read", err)
		}
		defer rows.Close()
		batch = batch[:0]
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				return nil, s.wrap("read", err)
			}
			batch = append(batch, r)
		}
		return batch, s.wrap("read", rows.Err())
	})(yield)
}

// Notify implements eventsource.Notifier: appends through this Store signal at
// once; appends by other processes are found by polling.
func (s *Store) Notify(ctx context.Context) (<-chan struct{}, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	return s.signal.Subscribe(ctx, s.poll, s.Head), nil
}

// Head implements eventsource.HeadReader.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	var p int64
	if err := s.db.QueryRowContext(ctx, s.q.head).Scan(&p); err != nil {
		return 0, s.wrap("head", err)
	}
	return uint64(p), nil
}

// ListStreams implements eventsource.StreamLister.
func (s *Store) ListStreams(ctx context.Context, prefix string) iter.Seq2[eventsource.StreamInfo, error] {
	return page.Seq(s.batch, func(last eventsource.StreamInfo, _ bool) ([]eventsource.StreamInfo, error) {
		if err := s.ready(ctx); err != nil {
			return nil, err
		}
		rows, err := s.db.QueryContext(ctx, s.q.list, last.StreamID, len([]rune(prefix)), prefix, s.batch)
		if err != nil {
			return nil, s.wrap("list streams", err)
		}
		defer rows.Close()
		var infos []eventsource.StreamInfo
		for rows.Next() {
			var info eventsource.StreamInfo
			if err := rows.Scan(&info.StreamID, &info.Version); err != nil {
				return nil, s.wrap("list streams", err)
			}
			infos = append(infos, info)
		}
		return infos, s.wrap("list streams", rows.Err())
	})
}

// DeleteStream implements eventsource.StreamDeleter.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected eventsource.ExpectedVersion) error {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return err
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("delete stream", err)
	}
	defer tx.Rollback()
	var current int64
	if err := tx.QueryRowContext(ctx, s.q.version, stream).Scan(&current); err != nil {
		return s.wrap("delete stream", err)
	}
	if current == 0 {
		return fmt.Errorf("%w: stream %q", eventsource.ErrNotFound, stream)
	}
	if !expected.Matches(current) {
		return &eventsource.ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
	}
	if _, err := tx.ExecContext(ctx, s.q.deleteEvents, stream); err != nil {
		return s.wrap("delete stream", err)
	}
	return s.wrap("delete stream", tx.Commit())
}

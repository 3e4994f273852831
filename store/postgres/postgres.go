package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// Store is an eventsource.Store on PostgreSQL. It also implements
// eventsource.Notifier, HeadReader, StreamLister, StreamDeleter,
// StreamLifecycle, Scavenger, SnapshotStore and Reserver. Build it with New
// or Open; it is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	ownPool bool
	cfg     config
	cfgErr  error // a bad option, returned by every call
	q       queries
	log     *slog.Logger

	migrateMu sync.Mutex
	migrated  atomic.Bool
	closed    atomic.Bool

	notifyMu   sync.Mutex
	subs       map[chan struct{}]struct{}
	listenStop context.CancelFunc // stops the listener goroutine; nil until the first Notify
	listenDone chan struct{}
	closing    chan struct{} // closed by Close

	kick         chan struct{} // asks the notifier goroutine for a pg_notify
	notifierOnce sync.Once
	notifierDone chan struct{}

	catchMu  sync.Mutex  // one inline catch-up at a time
	caughtUp atomic.Bool // the inline projections' catch-up is done
}

type config struct {
	prefix      string
	schema      string
	maxData     int
	batch       int
	notify      bool
	autoMigrate bool
	readWait    time.Duration
	logger      *slog.Logger
	inline      []inline // WithInline, in registration order
}

// Option configures a Store.
type Option func(*config)

// WithTablePrefix sets the prefix of the store's table names ("es_" by
// default): {prefix}events, {prefix}streams, {prefix}schema_migrations. It
// must be at most 30 ASCII letters, digits and underscores.
func WithTablePrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithSchema puts the store's tables in the named schema instead of the
// connection's search_path. The name must be 1..63 ASCII letters, digits and
// underscores, not starting with a digit. Migrate creates the schema when it
// is missing.
func WithSchema(name string) Option { return func(c *config) { c.schema = name } }

// WithMaxDataSize sets the largest Data a record may have
// (eventsource.DefaultMaxData by default).
func WithMaxDataSize(n int) Option { return func(c *config) { c.maxData = n } }

// WithBatchSize sets how many records a read fetches per round trip (1000 by
// default). The connection goes back to the pool between batches.
func WithBatchSize(n int) Option { return func(c *config) { c.batch = n } }

// WithNotify turns LISTEN/NOTIFY on or off (on by default). When off, appends
// send no pg_notify and Notify hears this store's own appends at once and
// other processes' through a Head poll once a second. When on, Append sends
// its pg_notify after its commit, coalesced and outside its transaction, so
// it does not serialise commits (see the package documentation).
func WithNotify(on bool) Option { return func(c *config) { c.notify = on } }

// WithReadWait sets how long ReadAll and Head may wait, at the end of the
// log, for transactions that are still running to end, so that records
// committed by newer transactions can be shown (2s by default; 0 never
// waits). See the package documentation: a record becomes visible in the
// global log only once every older transaction of the cluster has ended.
// Waiting keeps "append, then read the log" working under concurrent load;
// when the wait runs out, the read ends with what is safe to show, and the
// rest comes in a later read.
func WithReadWait(d time.Duration) Option { return func(c *config) { c.readWait = d } }

// WithLogger sets where the store logs (listener reconnects, failed
// migrations). It is silent by default.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithoutAutoMigrate stops the store from migrating its schema on first use;
// call Migrate yourself (for example from a deploy step).
func WithoutAutoMigrate() Option { return func(c *config) { c.autoMigrate = false } }

// New returns a store that uses pool, which the caller owns and closes after
// the store. New does no I/O: unless WithoutAutoMigrate is given, the schema
// is migrated on first use. A bad option is reported by every call
// (wrapping eventsource.ErrInvalidConfig).
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	c := config{
		prefix:      "es_",
		maxData:     eventsource.DefaultMaxData,
		batch:       1000,
		notify:      true,
		autoMigrate: true,
		readWait:    2 * time.Second,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	s := &Store{pool: pool, cfg: c, subs: map[chan struct{}]struct{}{}, closing: make(chan struct{}), kick: make(chan struct{}, 1)}
	s.log = c.logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.cfgErr = c.validate()
	if s.cfgErr == nil {
		s.q = buildQueries(c)
		if pool == nil {
			s.cfgErr = fmt.Errorf("%w: postgres: nil pool", eventsource.ErrInvalidConfig)
		}
	}
	return s
}

// Open connects to the database at url (a PostgreSQL URL or DSN as pgxpool
// accepts it), with a pool the store owns and closes in Close, checks the
// connection and migrates the schema (unless WithoutAutoMigrate is given:
// then nothing is created; Verify checks that the schema is there).
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	s := New(nil, opts...)
	if err := s.cfg.validate(); err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s.pool, s.ownPool, s.cfgErr = pool, true, nil
	// Connect first: an unreachable server is a connection error, not a
	// failed migration.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		cc := pool.Config().ConnConfig
		return nil, wrap(ctx, err, "connect to %s:%d", cc.Host, cc.Port)
	}
	if s.cfg.autoMigrate {
		if err := s.Migrate(ctx); err != nil {
			pool.Close()
			return nil, err
		}
		if err := s.catchUp(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return s, nil
}

// Pool returns the pool the store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close stops the store's listener, ends every Notify channel and, when Open
// made the pool, closes it. Later calls fail with eventsource.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.closing)
	s.notifyMu.Lock()
	stop, done := s.listenStop, s.listenDone
	for ch := range s.subs {
		delete(s.subs, ch)
		close(ch)
	}
	s.notifyMu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	s.notifierOnce.Do(func() {}) // no notifier starts after this
	if s.notifierDone != nil {
		<-s.notifierDone
	}
	if s.ownPool && s.pool != nil {
		s.pool.Close()
	}
	return nil
}

// ready reports why the store cannot serve a call, migrating it first when
// that is still to do.
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
	if !s.cfg.autoMigrate || s.migrated.Load() {
		return nil
	}
	return s.Migrate(ctx)
}

// wrap adds what failed to a database error, keeping context errors and
// eventsource sentinels matchable with errors.Is.
func wrap(ctx context.Context, err error, format string, args ...any) error {
	return storekit.Wrap(ctx, err, "postgres", format, args...)
}

// queryer is what the append statement runs on: the pool, a pool
// transaction, or the caller's transaction.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	_ eventsource.Store         = (*Store)(nil)
	_ eventsource.Notifier      = (*Store)(nil)
	_ eventsource.HeadReader    = (*Store)(nil)
	_ eventsource.StreamLister  = (*Store)(nil)
	_ eventsource.StreamDeleter = (*Store)(nil)
)

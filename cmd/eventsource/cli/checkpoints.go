package cli

// Where the projections commands find checkpoints: the event store's own
// database, or the one --checkpoints names.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/cmd/eventsource/console"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/store/mysql"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/pgcheckpoint"
	"github.com/eventsource-go/eventsource/store/sqlite"
	"github.com/eventsource-go/eventsource/storeurl"
)

// checkpointFlags are the projections group's flags.
type checkpointFlags struct {
	url    string // --checkpoints
	prefix string // --table-prefix
	schema string // --schema
}

// checkpoints is a checkpoint store opened for one command, with the calls
// on parked events that need its transaction type.
type checkpoints struct {
	projection.CheckpointStore
	events  storeurl.Store // nil unless the command needs the log
	table   string         // for messages
	where   string         // "es_projections in sqlite://events.db", for messages
	replay  func(ctx context.Context, name string, positions ...uint64) error
	discard func(ctx context.Context, name string, positions ...uint64) error
	exists  func(ctx context.Context) (bool, error) // whether the table is there
	closers []func()
}

func (c *checkpoints) Close() {
	for _, f := range slices.Backward(c.closers) {
		f()
	}
}

// useTx makes cps the checkpoint store of c.
func useTx[Tx any](c *checkpoints, cps projection.TxCheckpointStore[Tx]) {
	c.CheckpointStore = cps
	c.replay = func(ctx context.Context, name string, positions ...uint64) error {
		return projection.ReplayParked(ctx, cps, name, positions...)
	}
	c.discard = func(ctx context.Context, name string, positions ...uint64) error {
		return projection.DiscardParked(ctx, cps, name, positions...)
	}
}

// openCheckpoints opens the checkpoints of the projections commands, and
// the event store when needEvents is set (verify) or when the checkpoints
// live in its database. Nothing is created: a missing store or checkpoint
// table is "not found". Close c when done.
func (a *app) openCheckpoints(cmd *cobra.Command, f *checkpointFlags, needEvents bool) (*checkpoints, error) {
	c := &checkpoints{}
	if err := a.fillCheckpoints(cmd, f, needEvents, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (a *app) fillCheckpoints(cmd *cobra.Command, f *checkpointFlags, needEvents bool, c *checkpoints) error {
	ctx := cmd.Context()
	if f.url == "" {
		// Decided before connecting: an unreachable NATS server is not the point.
		switch scheme, _, _ := strings.Cut(a.storeURL, ":"); scheme {
		case "sqlite", "mysql", "postgres", "postgresql":
		default:
			return noSQL(scheme)
		}
	}
	if f.url == "" || needEvents {
		s, err := a.openExisting(cmd)
		if err != nil {
			return err
		}
		c.events = s
		c.closers = append(c.closers, func() { s.Close() })
	}
	var err error
	if f.url == "" {
		err = c.inStore(f, a.storeURL)
	} else {
		err = c.fromURL(ctx, f)
	}
	if err != nil {
		return err
	}
	ok, err := c.exists(ctx)
	if err != nil {
		return fmt.Errorf("look for %s: %w", c.where, err)
	}
	if !ok {
		return fmt.Errorf("%w: no projection checkpoints: %s does not exist (a projector creates it on its first run; --table-prefix, --schema or --checkpoints name another)", eventsource.ErrNotFound, c.where)
	}
	return nil
}

// inStore uses the event store's own database.
func (c *checkpoints) inStore(f *checkpointFlags, storeURL string) error {
	where := storeurl.Redact(storeURL)
	switch s := c.events.(type) {
	case *sqlite.Store:
		return c.sql(s.DB(), sqlcheckpoint.SQLite, f, where)
	case *mysql.Store:
		return c.sql(s.DB(), sqlcheckpoint.MySQL, f, where)
	case *postgres.Store:
		return c.pg(s.Pool(), f, where)
	}
	scheme, _, _ := strings.Cut(storeURL, ":")
	return noSQL(scheme)
}

func noSQL(scheme string) error {
	return usagef("checkpoints need a SQL database, and a %s:// store has none: name one with --checkpoints URL (sqlite://, mysql:// or postgres://)", scheme)
}

// fromURL opens the database --checkpoints names.
func (c *checkpoints) fromURL(ctx context.Context, f *checkpointFlags) error {
	where := storeurl.Redact(f.url)
	u, err := url.Parse(f.url)
	if err != nil || u.Scheme == "" {
		return usagef("--checkpoints %s: want a sqlite://, mysql:// or postgres:// URL", where)
	}
	switch u.Scheme {
	case "sqlite":
		if len(u.Query()) > 0 {
			return usagef("--checkpoints %s: a sqlite:// URL takes no parameters (--table-prefix chooses the table)", where)
		}
		path := u.Host + u.Path
		if u.Opaque != "" {
			path = u.Opaque
		}
		if path == "" {
			return usagef("--checkpoints %s names no file (sqlite://events.db or sqlite:///abs/path.db)", where)
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%w: sqlite %s does not exist", eventsource.ErrNotFound, path)
		}
		db, err := sql.Open("sqlite", sqlite.DSN(path))
		if err != nil {
			return fmt.Errorf("sqlite %s: open: %w", path, err)
		}
		c.closers = append(c.closers, func() { db.Close() })
		return c.sql(db, sqlcheckpoint.SQLite, f, where)
	case "mysql":
		cfg := gomysql.NewConfig()
		cfg.Net, cfg.Addr, cfg.DBName = "tcp", u.Host, strings.TrimPrefix(u.Path, "/")
		if u.Port() == "" {
			cfg.Addr = u.Hostname() + ":3306"
		}
		if u.User != nil {
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
		}
		dsn := cfg.FormatDSN()
		if q := u.Query(); len(q) > 0 { // the driver's own parameters
			dsn += "?" + q.Encode()
		}
		cfg, err := gomysql.ParseDSN(dsn)
		if err != nil {
			return usagef("--checkpoints %s: %v", where, err)
		}
		connector, err := gomysql.NewConnector(cfg)
		if err != nil {
			return usagef("--checkpoints %s: %v", where, err)
		}
		db := sql.OpenDB(connector)
		c.closers = append(c.closers, func() { db.Close() })
		if err := db.PingContext(ctx); err != nil {
			return fmt.Errorf("mysql: connect to %s: %w", cfg.Addr, err)
		}
		return c.sql(db, sqlcheckpoint.MySQL, f, where)
	case "postgres", "postgresql":
		pool, err := pgxpool.New(ctx, f.url)
		if err != nil {
			return usagef("--checkpoints %s: %v", where, err)
		}
		c.closers = append(c.closers, pool.Close)
		if err := pool.Ping(ctx); err != nil {
			cc := pool.Config().ConnConfig
			return fmt.Errorf("postgres: connect to %s:%d: %w", cc.Host, cc.Port, err)
		}
		return c.pg(pool, f, where)
	}
	return usagef("--checkpoints %s: checkpoints need a SQL database: want a sqlite://, mysql:// or postgres:// URL", where)
}

func (c *checkpoints) sql(db *sql.DB, d sqlcheckpoint.Dialect, f *checkpointFlags, where string) error {
	if f.schema != "" {
		return usagef("--schema %s: only PostgreSQL checkpoints live in a schema", f.schema)
	}
	cps, err := sqlcheckpoint.New(db, d, sqlcheckpoint.WithTablePrefix(f.prefix))
	if err != nil {
		return err
	}
	useTx(c, cps)
	c.table = f.prefix + "projections"
	c.where = fmt.Sprintf("table %s in %s", c.table, where)
	query := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if d == sqlcheckpoint.MySQL {
		query = `SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`
	}
	c.exists = func(ctx context.Context) (bool, error) {
		var n int
		err := db.QueryRowContext(ctx, query, c.table).Scan(&n)
		return n > 0, err
	}
	return nil
}

func (c *checkpoints) pg(pool *pgxpool.Pool, f *checkpointFlags, where string) error {
	opts := []pgcheckpoint.Option{pgcheckpoint.WithTablePrefix(f.prefix)}
	ident := pgx.Identifier{f.prefix + "projections"}
	if f.schema != "" {
		opts = append(opts, pgcheckpoint.WithSchema(f.schema))
		ident = pgx.Identifier{f.schema, f.prefix + "projections"}
	}
	cps, err := pgcheckpoint.New(pool, opts...)
	if err != nil {
		return err
	}
	useTx(c, cps)
	c.table = strings.Join(ident, ".")
	c.where = fmt.Sprintf("table %s in %s", c.table, where)
	c.exists = func(ctx context.Context) (bool, error) {
		var ok bool
		err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, ident.Sanitize()).Scan(&ok)
		return ok, err
	}
	return nil
}

// load returns the checkpoint of projection name; one the store does not
// hold is "not found" (the stores return a zero checkpoint).
func (c *checkpoints) load(ctx context.Context, name string) (projection.Checkpoint, error) {
	if name == "" {
		return projection.Checkpoint{}, usagef("a projection name is required")
	}
	cp, err := c.Load(ctx, name)
	if err != nil {
		return cp, err
	}
	found := console.Exists(cp, nil)
	if l, ok := c.CheckpointStore.(projection.CheckpointLister); ok && !found {
		// A row may exist with nothing in it yet (a lease taken and given back).
		all, err := l.List(ctx)
		if err != nil {
			return cp, err
		}
		found = console.Exists(cp, all)
	}
	if !found {
		return cp, fmt.Errorf("%w: no projection %q in %s (eventsource projections list shows those there are)", eventsource.ErrNotFound, name, c.where)
	}
	return cp, nil
}

// list returns every checkpoint, when the store can list them.
func (c *checkpoints) list(ctx context.Context) ([]projection.Checkpoint, error) {
	l, ok := c.CheckpointStore.(projection.CheckpointLister)
	if !ok {
		return nil, errors.New("this checkpoint store cannot list its projections (it does not implement projection.CheckpointLister); name one: eventsource projections status NAME")
	}
	return l.List(ctx)
}

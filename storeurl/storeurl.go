// Package storeurl opens an event store named by a URL, so programs and the
// command-line tool can be pointed at any backend without code changes:
//
//	sqlite://events.db              a file (relative path), created if missing
//	sqlite:///var/lib/app/events.db an absolute path
//	memory://                       an empty in-memory store
//	postgres://user@host:5432/db    PostgreSQL (also postgresql://)
//	mysql://user:pass@host:3306/db  MySQL or MariaDB
//	dynamodb://table?region=eu-west-1                      DynamoDB
//	dynamodb://table?endpoint=http://127.0.0.1:4567&create=true  a local DynamoDB API (dynalite)
//	nats://host:4222?stream=EVENTS&subject=es       NATS JetStream
//
// Query parameters choose options; each scheme takes its own (Params lists
// them) and refuses any other, so a misspelt one is an error rather than a
// silent default. A postgres:// URL passes parameters it does not know to
// pgx (sslmode=disable, …). Importing this package links every store's
// driver; import a store's own package to link only that one.
package storeurl

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/eventsource-go/eventsource"
	esdynamodb "github.com/eventsource-go/eventsource/store/dynamodb"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/store/mysql"
	esnats "github.com/eventsource-go/eventsource/store/nats"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// Store is an opened store; Close releases what Open made.
type Store interface {
	eventsource.Store
	Close() error
}

// Option changes how Open opens a store.
type Option func(*options)

type options struct {
	mustExist bool
}

// MustExist opens only a store that exists, and creates nothing: no SQLite
// file, no tables or schema, no JetStream stream, no DynamoDB table (also
// with create=true). A missing store is an error wrapping
// eventsource.ErrNotFound that names what was looked for. Use it for
// programs that only read.
func MustExist() Option { return func(o *options) { o.mustExist = true } }

// scheme is how Open opens the stores of one URL scheme.
type scheme struct {
	params      []string // the query parameters it takes
	passThrough bool     // others go to the driver
	open        func(ctx context.Context, u *url.URL, o options) (Store, error)
}

var schemes = map[string]scheme{
	"memory":     {open: openMemory},
	"sqlite":     {params: []string{"prefix"}, open: openSQLite},
	"postgres":   {params: []string{"prefix", "schema"}, passThrough: true, open: openPostgres},
	"postgresql": {params: []string{"prefix", "schema"}, passThrough: true, open: openPostgres},
	"mysql":      {params: append([]string{"prefix"}, mysqlParams...), open: openMySQL},
	"dynamodb":   {params: []string{"create", "endpoint", "region"}, open: openDynamoDB},
	"nats":       {params: []string{"stream", "subject"}, open: openNATS},
}

// mysqlParams are the go-sql-driver/mysql DSN parameters a mysql:// URL
// may carry.
var mysqlParams = []string{"allowCleartextPasswords", "allowNativePasswords", "charset", "readTimeout", "timeout", "tls", "writeTimeout"}

// Schemes lists the URL schemes Open understands.
var Schemes = []string{"sqlite", "memory", "postgres", "postgresql", "mysql", "dynamodb", "nats"}

// Params returns the query parameters a scheme's URLs take, sorted; nil for
// an unknown scheme.
func Params(scheme string) []string {
	s, ok := schemes[scheme]
	if !ok {
		return nil
	}
	return slices.Sorted(slices.Values(s.params))
}

// Open opens the store named by rawURL. A URL that cannot name a store (bad
// syntax, unknown scheme or query parameter) is an error wrapping
// eventsource.ErrInvalidConfig.
func Open(ctx context.Context, rawURL string, opts ...Option) (Store, error) {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("%w: store URL %q: want scheme://…, one of %s", eventsource.ErrInvalidConfig, redact(rawURL), strings.Join(Schemes, ", "))
	}
	sc, ok := schemes[u.Scheme]
	if !ok {
		return nil, fmt.Errorf("%w: store URL scheme %q: want one of %s", eventsource.ErrInvalidConfig, u.Scheme, strings.Join(Schemes, ", "))
	}
	if !sc.passThrough {
		for _, k := range slices.Sorted(maps.Keys(u.Query())) {
			if !slices.Contains(sc.params, k) {
				known := "no parameters"
				if len(sc.params) > 0 {
					known = strings.Join(Params(u.Scheme), ", ")
				}
				return nil, fmt.Errorf("%w: store URL %s: unknown parameter %q (%s:// takes %s)", eventsource.ErrInvalidConfig, redact(rawURL), k, u.Scheme, known)
			}
		}
	}
	s, err := sc.open(ctx, u, o)
	if err != nil {
		return nil, err
	}
	if v, ok := s.(interface{ Verify(context.Context) error }); ok && o.mustExist {
		if err := v.Verify(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func openMemory(context.Context, *url.URL, options) (Store, error) { return memory.New(), nil }

func openSQLite(ctx context.Context, u *url.URL, o options) (Store, error) {
	path := u.Host + u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if path == "" {
		return nil, fmt.Errorf("%w: %q names no file (sqlite://events.db or sqlite:///abs/path.db)", eventsource.ErrInvalidConfig, u.Redacted())
	}
	var opts []sqlite.Option
	if q := u.Query(); q.Has("prefix") {
		opts = append(opts, sqlite.WithTablePrefix(q.Get("prefix")))
	}
	if o.mustExist {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%w: sqlite %s does not exist", eventsource.ErrNotFound, path)
		}
		opts = append(opts, sqlite.WithoutAutoMigrate())
	}
	return sqlite.Open(ctx, path, opts...)
}

func openPostgres(ctx context.Context, u *url.URL, o options) (Store, error) {
	q := u.Query()
	var opts []postgres.Option
	if q.Has("prefix") {
		opts = append(opts, postgres.WithTablePrefix(q.Get("prefix")))
	}
	if q.Has("schema") {
		opts = append(opts, postgres.WithSchema(q.Get("schema")))
	}
	if o.mustExist {
		opts = append(opts, postgres.WithoutAutoMigrate())
	}
	q.Del("prefix")
	q.Del("schema")
	v := *u
	v.RawQuery = q.Encode()
	return postgres.Open(ctx, v.String(), opts...)
}

func openMySQL(ctx context.Context, u *url.URL, o options) (Store, error) {
	cfg := gomysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = u.Hostname() + ":3306"
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	var opts []mysql.Option
	if q.Has("prefix") {
		opts = append(opts, mysql.WithTablePrefix(q.Get("prefix")))
	}
	if o.mustExist {
		opts = append(opts, mysql.WithoutAutoMigrate())
	}
	// The driver parses its own parameters from the DSN.
	dsn := cfg.FormatDSN()
	q.Del("prefix")
	if len(q) > 0 {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + q.Encode()
	}
	return mysql.Open(ctx, dsn, opts...)
}

func openDynamoDB(ctx context.Context, u *url.URL, o options) (Store, error) {
	v := *u
	if o.mustExist {
		q := v.Query()
		q.Del("create")
		v.RawQuery = q.Encode()
	}
	return esdynamodb.Open(ctx, v.String())
}

func openNATS(ctx context.Context, u *url.URL, o options) (Store, error) {
	q := u.Query()
	var opts []esnats.Option
	if q.Has("stream") {
		opts = append(opts, esnats.WithStreamName(q.Get("stream")))
	}
	if q.Has("subject") {
		opts = append(opts, esnats.WithSubjectPrefix(q.Get("subject")))
	}
	if o.mustExist {
		opts = append(opts, esnats.WithoutAutoSetup())
	}
	v := *u
	v.RawQuery = ""
	return esnats.Open(ctx, v.String(), opts...)
}

// redact hides a password in a URL for error messages.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

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
// Query parameters choose options: prefix (the table prefix, all SQL
// stores) and schema (PostgreSQL). Other parameters of a postgres:// URL are
// passed to pgx (sslmode=disable, …). Importing this package links every
// store's driver; import a store's own package to link only that one.
package storeurl

import (
	"context"
	"fmt"
	"net/url"
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

// Schemes lists the URL schemes Open understands.
var Schemes = []string{"sqlite", "memory", "postgres", "postgresql", "mysql", "dynamodb", "nats"}

// Open opens the store named by rawURL.
func Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("%w: store URL %q: want scheme://…, one of %s", eventsource.ErrInvalidConfig, redact(rawURL), strings.Join(Schemes, ", "))
	}
	q := u.Query()
	prefix, hasPrefix := q.Get("prefix"), q.Has("prefix")
	switch u.Scheme {
	case "memory":
		return memory.New(), nil
	case "sqlite":
		path := u.Host + u.Path
		if u.Opaque != "" {
			path = u.Opaque
		}
		if path == "" {
			return nil, fmt.Errorf("%w: %q names no file (sqlite://events.db or sqlite:///abs/path.db)", eventsource.ErrInvalidConfig, rawURL)
		}
		var opts []sqlite.Option
		if hasPrefix {
			opts = append(opts, sqlite.WithTablePrefix(prefix))
		}
		return sqlite.Open(ctx, path, opts...)
	case "postgres", "postgresql":
		var opts []postgres.Option
		if hasPrefix {
			opts = append(opts, postgres.WithTablePrefix(prefix))
		}
		if q.Has("schema") {
			opts = append(opts, postgres.WithSchema(q.Get("schema")))
		}
		q.Del("prefix")
		q.Del("schema")
		u.RawQuery = q.Encode()
		return postgres.Open(ctx, u.String(), opts...)
	case "dynamodb":
		return esdynamodb.Open(ctx, rawURL)
	case "nats":
		var opts []esnats.Option
		if q.Has("stream") {
			opts = append(opts, esnats.WithStreamName(q.Get("stream")))
		}
		if q.Has("subject") {
			opts = append(opts, esnats.WithSubjectPrefix(q.Get("subject")))
		}
		u.RawQuery = ""
		return esnats.Open(ctx, u.String(), opts...)
	case "mysql":
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
		var opts []mysql.Option
		if hasPrefix {
			opts = append(opts, mysql.WithTablePrefix(prefix))
		}
		return mysql.Open(ctx, cfg.FormatDSN(), opts...)
	}
	return nil, fmt.Errorf("%w: store URL scheme %q: want one of %s", eventsource.ErrInvalidConfig, u.Scheme, strings.Join(Schemes, ", "))
}

// redact hides a password in a URL for error messages.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

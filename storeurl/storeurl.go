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
// Each store package registers its schemes when it is linked, as
// database/sql drivers do: importing storeurl links no store. Import the
// ones a program may open, for their side effect if it uses nothing else:
//
//	import (
//		"github.com/eventsource-go/eventsource/storeurl"
//		_ "github.com/eventsource-go/eventsource/store/postgres"
//		_ "github.com/eventsource-go/eventsource/store/sqlite"
//	)
//
// Query parameters choose options; each scheme takes its own (Params lists
// them) and refuses any other, so a misspelt one is an error rather than a
// silent default. (A postgres:// URL passes parameters it does not know to
// pgx, as sslmode=disable.)
package storeurl

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/eventsource-go/eventsource"
)

// Store is an opened store; Close releases what Open made.
type Store interface {
	eventsource.Store
	Close() error
}

// Options are what Open was asked for beyond the URL.
type Options struct {
	// MustExist: open only a store that exists and create nothing (no
	// file, table, schema, stream); a missing one is an error wrapping
	// eventsource.ErrNotFound that names what was looked for.
	MustExist bool
}

// Option changes how Open opens a store.
type Option func(*Options)

// MustExist opens only a store that exists, and creates nothing: no SQLite
// file, no tables or schema, no JetStream stream, no DynamoDB table (also
// with create=true). A missing store is an error wrapping
// eventsource.ErrNotFound that names what was looked for. Use it for
// programs that only read.
func MustExist() Option { return func(o *Options) { o.MustExist = true } }

// Scheme is how Open opens the stores of one URL scheme; a store package
// registers it from an init function.
type Scheme struct {
	Name string // "sqlite", "postgres", …
	// Params are the query parameters the scheme takes: Open refuses
	// others, unless PassThrough is set (they go to the driver then).
	Params      []string
	PassThrough bool
	// Open opens the store u names. Given o.MustExist it must create
	// nothing; a store that has a Verify(ctx) error method is then also
	// verified by Open.
	Open func(ctx context.Context, u *url.URL, o Options) (Store, error)
}

var (
	mu      sync.RWMutex
	schemes = map[string]Scheme{}
)

// Register makes a scheme available to Open. It panics if the name is
// empty or taken, or Open is nil: a program that links two stores for one
// scheme is built wrong.
func Register(s Scheme) {
	mu.Lock()
	defer mu.Unlock()
	if s.Name == "" || s.Open == nil {
		panic("storeurl: Register needs a name and an Open function")
	}
	if _, dup := schemes[s.Name]; dup {
		panic("storeurl: scheme " + s.Name + " registered twice")
	}
	s.Params = slices.Sorted(slices.Values(s.Params))
	schemes[s.Name] = s
}

// Schemes lists the registered URL schemes, sorted.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	return slices.Sorted(maps.Keys(schemes))
}

// Params returns the query parameters a registered scheme's URLs take,
// sorted; nil for an unknown scheme.
func Params(scheme string) []string {
	mu.RLock()
	defer mu.RUnlock()
	return slices.Clone(schemes[scheme].Params)
}

// Open opens the store named by rawURL. A URL that cannot name a store (bad
// syntax, unknown scheme or query parameter) is an error wrapping
// eventsource.ErrInvalidConfig; the error of an unknown scheme lists the
// registered ones.
func Open(ctx context.Context, rawURL string, opts ...Option) (Store, error) {
	var o Options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("%w: store URL %q: want scheme://…, one of %s", eventsource.ErrInvalidConfig, Redact(rawURL), known())
	}
	mu.RLock()
	sc, ok := schemes[u.Scheme]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: store URL scheme %q: want one of %s (a store registers its scheme when its package is imported)", eventsource.ErrInvalidConfig, u.Scheme, known())
	}
	if !sc.PassThrough {
		for _, k := range slices.Sorted(maps.Keys(u.Query())) {
			if !slices.Contains(sc.Params, k) {
				takes := "no parameters"
				if len(sc.Params) > 0 {
					takes = strings.Join(sc.Params, ", ")
				}
				return nil, fmt.Errorf("%w: store URL %s: unknown parameter %q (%s:// takes %s)", eventsource.ErrInvalidConfig, Redact(rawURL), k, u.Scheme, takes)
			}
		}
	}
	s, err := sc.Open(ctx, u, o)
	if err != nil {
		return nil, err
	}
	if v, ok := s.(interface{ Verify(context.Context) error }); ok && o.MustExist {
		if err := v.Verify(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func known() string {
	if names := Schemes(); len(names) > 0 {
		return strings.Join(names, ", ")
	}
	return "(none registered: import a store package)"
}

// Redact hides a password in a URL, for messages.
func Redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

package storeurl_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/storeurl"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

func roundTrip(t *testing.T, raw string) {
	t.Helper()
	ctx := context.Background()
	s, err := storeurl.Open(ctx, raw)
	if err != nil {
		t.Fatalf("Open(%s): %v", raw, err)
	}
	defer s.Close()
	stream := "storeurl-" + eventsource.NewEventID()
	if _, err := s.Append(ctx, stream, eventsource.NoStream, []eventsource.Record{{Type: "T", Data: []byte("{}")}}); err != nil {
		t.Fatalf("%s: append: %v", raw, err)
	}
	h, err := eventsource.ReadStreamAll(ctx, s, stream)
	if err != nil || len(h) != 1 {
		t.Fatalf("%s: read %d records, %v", raw, len(h), err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	roundTrip(t, "memory://")
	roundTrip(t, "sqlite://"+filepath.Join(dir, "abs.db"))
	roundTrip(t, "sqlite://"+filepath.Join(dir, "prefixed.db")+"?prefix=app_")
	wd, _ := os.Getwd()
	t.Chdir(dir)
	roundTrip(t, "sqlite://relative.db")
	if _, err := os.Stat(filepath.Join(dir, "relative.db")); err != nil {
		t.Fatalf("relative path not created in the working directory: %v", err)
	}
	t.Chdir(wd)
}

func TestOpenServers(t *testing.T) {
	pg := testenv.Postgres.URL(t)
	schema := testenv.Name("storeurl_")
	t.Cleanup(func() { dropPostgresSchema(pg, schema) })
	roundTrip(t, pg+"&schema="+schema)
	my := testenv.MySQL.URL(t) // root@tcp(127.0.0.1:3306)/test
	prefix := testenv.Name("storeurl_") + "_"
	t.Cleanup(func() { dropMySQLTables(my, prefix) })
	roundTrip(t, "mysql://"+strings.NewReplacer("tcp(", "", ")", "").Replace(my)+"?prefix="+prefix)
	nats := testenv.NATS.URL(t)
	roundTrip(t, nats+"?stream=STOREURL&subject=storeurl")
	dyn := testenv.DynamoDB.URL(t)
	roundTrip(t, "dynamodb://storeurl-"+strings.ReplaceAll(eventsource.NewEventID()[:8], "-", "")+"?create=true&endpoint="+url.QueryEscape(dyn))
}

func TestOpenRefusesBadURLs(t *testing.T) {
	for _, raw := range []string{"", "events.db", "ftp://x", "sqlite://", "sqlite://" + filepath.Join(t.TempDir(), "x.db") + "?prefix=bad-prefix"} {
		s, err := storeurl.Open(context.Background(), raw)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", raw)
		} else if !errors.Is(err, eventsource.ErrInvalidConfig) {
			t.Errorf("Open(%q) = %v, want ErrInvalidConfig", raw, err)
		}
	}
	if _, err := storeurl.Open(context.Background(), "postgres://user:secret@127.0.0.1:1/db"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("an unreachable server's error leaks or is missing: %v", err)
	}
}

func dropPostgresSchema(url, schema string) {
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, url); err == nil {
		conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		conn.Close(ctx)
	}
}

func dropMySQLTables(dsn, prefix string) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return
	}
	defer db.Close()
	for _, t := range []string{"events", "streams", "position", "schema_migrations", "reservations"} {
		db.Exec("DROP TABLE IF EXISTS `" + prefix + t + "`")
	}
}

// A misspelt parameter is refused, naming the ones the scheme takes.
func TestOpenRefusesUnknownParameters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	for raw, says := range map[string]string{
		"sqlite://" + path + "?prefx=app_":        `"prefx" (sqlite:// takes prefix)`,
		"nats://127.0.0.1:1?strem=X":              `"strem" (nats:// takes stream, subject)`,
		"dynamodb://t?regoin=x":                   `"regoin" (dynamodb:// takes create, endpoint, region)`,
		"memory://?prefix=x":                      `"prefix" (memory:// takes no parameters)`,
		"mysql://root@127.0.0.1:1/test?prefixx=a": `"prefixx"`,
	} {
		_, err := storeurl.Open(context.Background(), raw)
		if !errors.Is(err, eventsource.ErrInvalidConfig) || !strings.Contains(err.Error(), says) {
			t.Errorf("Open(%q) = %v; want ErrInvalidConfig saying %s", raw, err, says)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a refused URL created %s", path)
	}
}

// MustExist creates nothing and reports a missing store as not found; an
// existing one opens.
func TestMustExist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	if _, err := storeurl.Open(ctx, "sqlite://"+path, storeurl.MustExist()); !errors.Is(err, eventsource.ErrNotFound) || !strings.Contains(err.Error(), path) {
		t.Fatalf("MustExist on a missing file = %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("MustExist created %s", path)
	}
	s, err := storeurl.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := storeurl.Open(ctx, "sqlite://"+path+"?prefix=other_", storeurl.MustExist()); !errors.Is(err, eventsource.ErrNotFound) || !strings.Contains(err.Error(), "other_schema_migrations") {
		t.Fatalf("MustExist with another prefix = %v", err)
	}
	s, err = storeurl.Open(ctx, "sqlite://"+path, storeurl.MustExist())
	if err != nil {
		t.Fatalf("MustExist on a store = %v", err)
	}
	s.Close()
}

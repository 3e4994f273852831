package postgres_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
)

// Open WithoutAutoMigrate and Verify create nothing, and say what is
// missing; after Migrate, Verify is content.
func TestVerifyCreatesNothing(t *testing.T) {
	ctx := ctxFor(t)
	url := testenv.Postgres.URL(t)
	missing := testenv.Name("es_v_") // a schema nobody made
	s, err := postgres.Open(ctx, url, postgres.WithSchema(missing), postgres.WithoutAutoMigrate())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Verify(ctx)
	if !errors.Is(err, eventsource.ErrNotFound) || !strings.Contains(err.Error(), missing+".es_schema_migrations") {
		t.Fatalf("Verify in a missing schema = %v; want ErrNotFound naming %s.es_schema_migrations", err, missing)
	}
	var n int
	if err := pgtest.Pool(t).QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", missing).Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema %s exists after Open and Verify (%d, %v)", missing, n, err)
	}

	schema := pgtest.Schema(t, "es_v_") // exists, without tables
	s2, err := postgres.Open(ctx, url, postgres.WithSchema(schema), postgres.WithoutAutoMigrate())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Verify(ctx); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("Verify in an empty schema = %v", err)
	}
	if err := s2.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Verify(ctx); err != nil {
		t.Fatalf("Verify after Migrate = %v", err)
	}
}

// An unreachable server is a connection error, not a failed migration.
func TestOpenUnreachable(t *testing.T) {
	_, err := postgres.Open(ctxFor(t), "postgres://postgres@127.0.0.1:1/test?sslmode=disable")
	if err == nil || !strings.Contains(err.Error(), "connect to 127.0.0.1:1") || strings.Contains(err.Error(), "migrate") {
		t.Fatalf("Open of an unreachable server = %v", err)
	}
}

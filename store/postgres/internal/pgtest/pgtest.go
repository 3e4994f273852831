// Package pgtest gives the PostgreSQL tests of several packages one way to
// reach the server: a pool shared by a test binary, and a fresh schema per
// test, dropped when the test ends.
package pgtest

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsource-go/eventsource/internal/testenv"
)

var shared struct {
	once sync.Once
	pool *pgxpool.Pool
	err  error
}

// Pool returns the pool the test binary's tests share, skipping (or failing
// under CI=true) when the server is unreachable. Close it from TestMain.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := testenv.Postgres.URL(t)
	shared.once.Do(func() {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			shared.err = err
			return
		}
		cfg.MaxConns = 24
		shared.pool, shared.err = pgxpool.NewWithConfig(context.Background(), cfg)
	})
	if shared.err != nil {
		t.Fatalf("pool for %s: %v", url, shared.err)
	}
	return shared.pool
}

// Close closes the shared pool, if one was made.
func Close() {
	if shared.pool != nil {
		shared.pool.Close()
	}
}

// Schema creates a schema named prefix plus a random suffix, dropped (with
// everything in it) when t ends.
func Schema(t testing.TB, prefix string) string {
	t.Helper()
	p := Pool(t)
	schema := testenv.Name(prefix)
	if _, err := p.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := p.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

package main

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource/internal/testenv"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// TestRun runs the example end to end on a temporary SQLite file.
func TestRun(t *testing.T) {
	if err := run(context.Background(), filepath.Join(t.TempDir(), "bank.db"), "", false); err != nil {
		t.Fatal(err)
	}
}

// TestRunOnEveryStore runs the example unchanged on each server store.
func TestRunOnEveryStore(t *testing.T) {
	pg, my := testenv.Postgres.URL(t), testenv.MySQL.URL(t)
	schema, prefix, table := testenv.Name("bank_"), testenv.Name("bank_")+"_", testenv.Name("bank-")
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, pg); err == nil {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(ctx)
		}
		if db, err := sql.Open("mysql", my); err == nil {
			for _, t := range []string{"events", "streams", "position", "schema_migrations", "reservations", "snapshots"} {
				db.Exec("DROP TABLE IF EXISTS `" + prefix + t + "`")
			}
			db.Close()
		}
	})
	stores := map[string]string{
		"memory":   "memory://",
		"postgres": pg + "&schema=" + schema,
		"mysql":    "mysql://" + strings.NewReplacer("tcp(", "", ")", "").Replace(my) + "?prefix=" + prefix,
		"dynamodb": "dynamodb://" + table + "?create=true&endpoint=" + url.QueryEscape(testenv.DynamoDB.URL(t)),
	}
	for name, u := range stores {
		t.Run(name, func(t *testing.T) {
			if err := run(context.Background(), "", u, false); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestEncryptAndShred runs the example with encryption, which ends by
// shredding Ann's key and checking her account can no longer be loaded.
func TestEncryptAndShred(t *testing.T) {
	if err := run(context.Background(), filepath.Join(t.TempDir(), "bank.db"), "", true); err != nil {
		t.Fatal(err)
	}
}

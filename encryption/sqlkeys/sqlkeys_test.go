package sqlkeys_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/encryption/keystoretest"
	"github.com/eventsource-go/eventsource/encryption/sqlkeys"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

func randomPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "k" + hex.EncodeToString(b) + "_"
}

var (
	dbMu sync.Mutex
	dbs  = map[string]*sql.DB{}
)

// shared returns one *sql.DB per server for the package's tests.
func shared(t testing.TB, driver string, srv testenv.Server) *sql.DB {
	t.Helper()
	url := srv.URL(t)
	dbMu.Lock()
	defer dbMu.Unlock()
	if db, ok := dbs[driver]; ok {
		return db
	}
	db, err := sql.Open(driver, url)
	if err != nil {
		t.Fatal(err)
	}
	dbs[driver] = db
	return db
}

// backends returns, by name, a function making a fresh store on its own
// table, dropped when t ends.
func backends() map[string]func(t *testing.T, opts ...sqlkeys.Option) (*sqlkeys.Store, *sql.DB, string) {
	withTable := func(t *testing.T, db *sql.DB, d sqlkeys.Dialect, opts []sqlkeys.Option) (*sqlkeys.Store, *sql.DB, string) {
		t.Helper()
		prefix := randomPrefix(t)
		s, err := sqlkeys.New(db, d, append([]sqlkeys.Option{sqlkeys.WithTablePrefix(prefix)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + prefix + "encryption_keys") })
		return s, db, prefix + "encryption_keys"
	}
	return map[string]func(t *testing.T, opts ...sqlkeys.Option) (*sqlkeys.Store, *sql.DB, string){
		"SQLite": func(t *testing.T, opts ...sqlkeys.Option) (*sqlkeys.Store, *sql.DB, string) {
			db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(t.TempDir(), "keys.db")))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return withTable(t, db, sqlkeys.SQLite, opts)
		},
		"MySQL": func(t *testing.T, opts ...sqlkeys.Option) (*sqlkeys.Store, *sql.DB, string) {
			return withTable(t, shared(t, "mysql", testenv.MySQL), sqlkeys.MySQL, opts)
		},
		"Postgres": func(t *testing.T, opts ...sqlkeys.Option) (*sqlkeys.Store, *sql.DB, string) {
			return withTable(t, shared(t, "pgx", testenv.Postgres), sqlkeys.Postgres, opts)
		},
	}
}

func masterKey(t testing.TB) *encryption.MasterKey {
	t.Helper()
	kek := make([]byte, encryption.KeySize)
	_, _ = rand.Read(kek)
	m, err := encryption.NewMasterKey(kek)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConformance(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			keystoretest.Run(t, func(t *testing.T) encryption.KeyStore { s, _, _ := open(t); return s })
		})
		t.Run(name+"MasterKey", func(t *testing.T) {
			m := masterKey(t)
			keystoretest.Run(t, func(t *testing.T) encryption.KeyStore { s, _, _ := open(t, sqlkeys.WithMasterKey(m)); return s })
		})
	}
}

func TestMasterKeyWrapsStoredKeys(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, db, table := open(t, sqlkeys.WithMasterKey(masterKey(t)))
			k, err := s.Current(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			rows, err := db.QueryContext(ctx, "SELECT material FROM "+table)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var m []byte
				if err := rows.Scan(&m); err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(m, k.Material) {
					t.Fatal("the table holds the key unwrapped")
				}
			}
			// Another master key reads nothing.
			other, err := sqlkeys.New(db, dialectOf(name), sqlkeys.WithTablePrefix(table[:len(table)-len("encryption_keys")]), sqlkeys.WithMasterKey(masterKey(t)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.Key(ctx, "s1", 1); !errors.Is(err, eventsource.ErrCorruptData) {
				t.Fatalf("wrong master key: %v, want ErrCorruptData", err)
			}
		})
	}
}

func dialectOf(name string) sqlkeys.Dialect {
	return map[string]sqlkeys.Dialect{"SQLite": sqlkeys.SQLite, "MySQL": sqlkeys.MySQL, "Postgres": sqlkeys.Postgres}[name]
}

func TestDeleteRemovesRows(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, db, table := open(t)
			for range 3 {
				if _, err := s.Rotate(ctx, "s1"); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Delete(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE material IS NOT NULL").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("%d key rows left after Delete", n)
			}
		})
	}
}

func TestInvalidConfig(t *testing.T) {
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(t.TempDir(), "k.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		db   *sql.DB
		d    sqlkeys.Dialect
		opts []sqlkeys.Option
	}{
		{nil, sqlkeys.SQLite, nil},
		{db, 0, nil},
		{db, sqlkeys.SQLite, []sqlkeys.Option{sqlkeys.WithTablePrefix("x; DROP TABLE y")}},
	} {
		if _, err := sqlkeys.New(tc.db, tc.d, tc.opts...); !errors.Is(err, eventsource.ErrInvalidConfig) {
			t.Errorf("New: %v, want ErrInvalidConfig", err)
		}
	}
}

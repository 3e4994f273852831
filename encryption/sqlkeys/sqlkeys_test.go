package sqlkeys_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/encryption/sqlkeys"
	"github.com/eventsource-go/eventsource/encryption/sqlkeys/sqlkeystest"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// SQLite here; the MySQL and PostgreSQL modules run the suite on theirs.
func TestSQLite(t *testing.T) {
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(t.TempDir(), "keys.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sqlkeystest.Run(t, db, sqlkeys.SQLite)
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

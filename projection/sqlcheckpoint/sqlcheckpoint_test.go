package sqlcheckpoint_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint/sqlcheckpointtest"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// SQLite here: the checkpoints and read model share the event store's
// file, as an application on SQLite would. The MySQL module runs the suite
// on MySQL.
func TestSQLite(t *testing.T) {
	sqlcheckpointtest.Run(t, sqlcheckpoint.SQLite, func(t *testing.T) *sql.DB {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "app.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.DB()
	})
}

func TestBadConfiguration(t *testing.T) {
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(t.TempDir(), "never.db"))) // never connected
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		db *sql.DB
		d  sqlcheckpoint.Dialect
		o  []sqlcheckpoint.Option
	}{
		{nil, sqlcheckpoint.SQLite, nil},
		{db, 0, nil},
		{db, sqlcheckpoint.MySQL, []sqlcheckpoint.Option{sqlcheckpoint.WithTablePrefix("bad prefix;")}},
	} {
		if _, err := sqlcheckpoint.New(c.db, c.d, c.o...); !errors.Is(err, eventsource.ErrInvalidConfig) {
			t.Errorf("New(%v, %v): %v, want ErrInvalidConfig", c.db, c.d, err)
		}
	}
}

package mysql_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/mysql"
)

// Open WithoutAutoMigrate and Verify create no table, and name the one
// missing; after Migrate, Verify is content.
func TestVerifyCreatesNothing(t *testing.T) {
	ctx := context.Background()
	prefix := randomPrefix(t)
	db := testDB(t)
	t.Cleanup(func() { dropTables(db, prefix) })
	s, err := mysql.Open(ctx, testenv.MySQL.URL(t), mysql.WithTablePrefix(prefix), mysql.WithoutAutoMigrate())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Verify(ctx)
	if !errors.Is(err, eventsource.ErrNotFound) || !strings.Contains(err.Error(), prefix+"schema_migrations") {
		t.Fatalf("Verify = %v; want ErrNotFound naming %sschema_migrations", err, prefix)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE ?", prefix+"%").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tables %s* after Open and Verify (%v)", n, prefix, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("Verify after Migrate = %v", err)
	}
}

package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// Verify looks without writing: an empty file stays empty, a file that is
// not a database is named, and a store is verified once migrated.
func TestVerifyWritesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(ctx, path, sqlite.WithoutAutoMigrate())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Verify(ctx)
	if !errors.Is(err, eventsource.ErrNotFound) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "es_schema_migrations") {
		t.Fatalf("Verify of an empty file = %v; want ErrNotFound naming the file and the table", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("the empty file was written to: size %v, %v", fi.Size(), err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("Verify after Migrate: %v", err)
	}
	other, err := sqlite.Open(ctx, path, sqlite.WithoutAutoMigrate(), sqlite.WithTablePrefix("other_"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Verify(ctx); !errors.Is(err, eventsource.ErrNotFound) || !strings.Contains(err.Error(), "other_schema_migrations") {
		t.Fatalf("Verify with another prefix = %v", err)
	}
}

func TestOpenNamesThePath(t *testing.T) {
	ctx := context.Background()
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("this is a text file, not a database, and it is long enough\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{text, filepath.Join(t.TempDir(), "no", "such", "dir.db")} {
		_, err := sqlite.Open(ctx, path)
		if err == nil || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "migrat") {
			t.Errorf("Open(%s) = %v; want an error naming the path, not a migration", path, err)
		}
	}
}

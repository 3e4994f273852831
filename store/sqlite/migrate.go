package sqlite

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/eventsource-go/eventsource/internal/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the schema. It is safe to call concurrently
// and from several processes (it runs in one write transaction).
func (s *Store) Migrate(ctx context.Context) error {
	s.migrateMu.Lock()
	defer s.migrateMu.Unlock()
	if s.migrated {
		return nil
	}
	files, err := migrate.Load(migrations, "migrations", strings.NewReplacer("{{prefix}}", s.prefix))
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// A new file's first connections race to switch it to WAL, and SQLite
	// may then answer SQLITE_BUSY without waiting: try again a few times.
	for attempt := 1; ; attempt++ {
		err := s.migrateOnce(ctx, files)
		if err == nil {
			s.migrated = true
			return nil
		}
		if !isBusy(err) || attempt == 10 {
			return err
		}
		s.log.DebugContext(ctx, "sqlite: database busy during migration, retrying", slog.Int("attempt", attempt))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
}

func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

func (s *Store) migrateOnce(ctx context.Context, files []migrate.File) error {
	if _, err := s.db.ExecContext(ctx, `PRAGMA journal_mode = WAL`); err != nil {
		return s.wrap("migrate", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("migrate", err)
	}
	defer tx.Rollback()
	table := s.prefix + "schema_migrations"
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return s.wrap("migrate", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM `+table).Scan(&current); err != nil {
		return s.wrap("migrate", err)
	}
	for _, f := range files {
		if f.Version <= current {
			continue
		}
		if _, err := tx.ExecContext(ctx, f.SQL); err != nil {
			return fmt.Errorf("%s: migration %s: %w", s.label(), f.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (version, applied_at) VALUES (?, ?)`, f.Version, time.Now().UnixNano()); err != nil {
			return s.wrap("migrate", err)
		}
		s.log.InfoContext(ctx, "sqlite: applied migration", slog.String("file", f.Name))
	}
	return s.wrap("migrate", tx.Commit())
}

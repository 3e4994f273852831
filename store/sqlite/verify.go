package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/eventsource-go/eventsource/internal/migrate"
)

// Verify reports whether the store's tables are there and current, without
// creating or changing anything (also not the file, when Open was given
// WithoutAutoMigrate): a database without them is an error wrapping
// eventsource.ErrNotFound that names the table looked for, one with an
// older schema wraps eventsource.ErrInvalidConfig (call Migrate).
func (s *Store) Verify(ctx context.Context) error {
	files, err := migrate.Load(migrations, "migrations", strings.NewReplacer("{{prefix}}", s.prefix))
	if err != nil {
		return fmt.Errorf("%s: %w", s.label(), err)
	}
	table := s.prefix + "schema_migrations"
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil {
		return s.wrap("verify", err)
	}
	current := 0
	if n > 0 {
		if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM `+table).Scan(&current); err != nil {
			return s.wrap("verify", err)
		}
	}
	return migrate.Verdict(s.label(), table, n > 0, current, files)
}

package postgres

import (
	"context"
	"strings"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/migrate"
)

// Verify reports whether the store's tables are there and current, without
// creating or changing anything: a database (or WithSchema schema) without
// them is an error wrapping eventsource.ErrNotFound that names the table
// looked for, one with an older schema wraps eventsource.ErrInvalidConfig
// (call Migrate). Open with WithoutAutoMigrate and Verify open an existing
// store read-only in effect: nothing is created.
func (s *Store) Verify(ctx context.Context) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	if s.closed.Load() {
		return eventsource.ErrClosed
	}
	files, err := loadMigrations()
	if err != nil {
		return err
	}
	// to_regclass is NULL for a missing table (or schema), where a cast
	// to regclass would fail.
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.q.migrations).Scan(&exists); err != nil {
		return wrap(ctx, err, "verify")
	}
	current := 0
	if exists {
		if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+s.q.migrations).Scan(&current); err != nil {
			return wrap(ctx, err, "verify")
		}
	}
	return migrate.Verdict("postgres", strings.ReplaceAll(s.q.migrations, `"`, ""), exists, current, files)
}

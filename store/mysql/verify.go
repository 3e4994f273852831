package mysql

import (
	"context"
	"fmt"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/migrate"
)

// Verify reports whether the store's tables are there and current, without
// creating or changing anything: a database without them is an error
// wrapping eventsource.ErrNotFound that names the table looked for, one with
// an older schema wraps eventsource.ErrInvalidConfig (call Migrate). Open
// with WithoutAutoMigrate and Verify create nothing.
func (s *Store) Verify(ctx context.Context) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	if s.closed.Load() {
		return eventsource.ErrClosed
	}
	files, err := migrations(s.cfg.prefix)
	if err != nil {
		return err
	}
	table := s.cfg.prefix + "schema_migrations"
	var db string
	var n int
	err = s.db.QueryRowContext(ctx, "SELECT coalesce(DATABASE(), ''), count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", table).Scan(&db, &n)
	if err != nil {
		return fmt.Errorf("mysql: verify: %w", err)
	}
	current := 0
	if n > 0 {
		if err := s.db.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM `"+table+"`").Scan(&current); err != nil {
			return fmt.Errorf("mysql: verify: %w", err)
		}
	}
	return migrate.Verdict("mysql", db+"."+table, n > 0, current, files)
}

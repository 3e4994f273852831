package mysql

import (
	"context"
	"embed"
	"fmt"
	"strings"

	"github.com/eventsource-go/eventsource/internal/migrate"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in version order, with the
// table prefix substituted.
func migrations(prefix string) ([]migrate.File, error) {
	files, err := migrate.Load(migrationFiles, "migrations", strings.NewReplacer("{{prefix}}", prefix))
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	return files, nil
}

// Migrate creates or upgrades the store's tables. It is safe to call from
// several processes at once: they take turns through a named server lock
// (GET_LOCK), and each migration is recorded in {prefix}schema_migrations so
// it runs once. MySQL commits DDL implicitly, so the statements are written
// to be re-runnable (IF NOT EXISTS) in case a process dies half-way.
func (s *Store) Migrate(ctx context.Context) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	s.migrateMu.Lock()
	defer s.migrateMu.Unlock()
	if err := s.migrate(ctx); err != nil {
		return fmt.Errorf("mysql: migrate tables %q: %w", s.cfg.prefix+"*", err)
	}
	s.migrated = true
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	all, err := migrations(s.cfg.prefix)
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()

	// The lock is per database and prefix; SHA1 keeps the name within
	// GET_LOCK's 64 characters.
	const lockName = "CONCAT('eventsource:', SHA1(CONCAT(DATABASE(), '.', ?)))"
	var got *int64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+lockName+", 60)", s.cfg.prefix).Scan(&got); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	if got == nil || *got != 1 {
		return fmt.Errorf("take migration lock: timed out after 60s")
	}
	defer func() {
		// A fresh context: the lock must go even if ctx is done. Closing
		// the connection would release it too.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK("+lockName+")", s.cfg.prefix)
	}()

	table := "`" + s.cfg.prefix + "schema_migrations`"
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+table+
		" (version INT UNSIGNED NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB"); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := conn.QueryContext(ctx, "SELECT version FROM "+table)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range all {
		if applied[m.Version] {
			continue
		}
		for _, st := range migrate.Statements(m.SQL) {
			if _, err := conn.ExecContext(ctx, st); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO "+table+" (version, name, applied_at) VALUES (?, ?, UTC_TIMESTAMP(6))", m.Version, m.Name); err != nil {
			return fmt.Errorf("%s: record: %w", m.Name, err)
		}
		s.log.InfoContext(ctx, "mysql: applied migration", "migration", m.Name, "prefix", s.cfg.prefix)
	}

	var packet int64
	if err := conn.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&packet); err == nil && packet > 0 {
		// Leave room for escaping (interpolateParams can double binary
		// data) and the statement around the values.
		s.packet.Store(min(packet/3, 16<<20))
	}
	return nil
}

package mysql

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations returns the embedded migrations in version order, with the
// table prefix substituted.
func migrations(prefix string) ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.up.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("mysql: migration file %s has no version number", base)
		}
		text, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, stmts: splitStatements(strings.ReplaceAll(string(text), "{{prefix}}", prefix))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// splitStatements splits a migration file on semicolons that end a line,
// dropping comment lines. The files are ours: no semicolons in strings.
func splitStatements(text string) []string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
			lines = append(lines, l)
		}
	}
	var out []string
	for _, st := range strings.SplitAfter(strings.Join(lines, "\n"), ";\n") {
		if st = strings.TrimSuffix(strings.TrimSpace(st), ";"); st != "" {
			out = append(out, st)
		}
	}
	return out
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
		if applied[m.version] {
			continue
		}
		for _, st := range m.stmts {
			if _, err := conn.ExecContext(ctx, st); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO "+table+" (version, name, applied_at) VALUES (?, ?, UTC_TIMESTAMP(6))", m.version, m.name); err != nil {
			return fmt.Errorf("%s: record: %w", m.name, err)
		}
		s.log.InfoContext(ctx, "mysql: applied migration", "migration", m.name, "prefix", s.cfg.prefix)
	}

	var packet int64
	if err := conn.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&packet); err == nil && packet > 0 {
		// Leave room for escaping (interpolateParams can double binary
		// data) and the statement around the values.
		s.packet.Store(min(packet/3, 16<<20))
	}
	return nil
}

package postgres

import (
	"context"
	"embed"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/migrate"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

func loadMigrations() ([]migrate.File, error) {
	files, err := migrate.Load(migrationFiles, "migrations", nil)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return files, nil
}

// migrateLock is the key of the transaction-scoped advisory lock every
// store's migration takes, so that processes migrating at once take turns
// (and see each other's work). Migrations are rare and short, so one key
// for all schemas and prefixes is enough.
const migrateLock int64 = 0x65736d6967726174 // "esmigrat"

// Migrate brings the store's tables up to date: it creates the schema (when
// WithSchema names one that is missing) and the {prefix}schema_migrations
// table, and applies the embedded migrations not yet recorded there, all in
// one transaction under an advisory lock, so concurrent Migrate calls, from
// this process or others, are safe. It is idempotent. Unless
// WithoutAutoMigrate is given, the store calls it on first use.
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrate(ctx, 0)
}

// migrate applies the migrations up to version upTo (0: all of them); only
// a complete migration marks the store migrated.
func (s *Store) migrate(ctx context.Context, upTo int) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	if s.closed.Load() {
		return eventsource.ErrClosed
	}
	s.migrateMu.Lock()
	defer s.migrateMu.Unlock()
	if s.migrated.Load() {
		return nil
	}
	migrations, err := loadMigrations()
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLock); err != nil {
			return err
		}
		if s.cfg.schema != "" {
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", s.cfg.schema).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{s.cfg.schema}.Sanitize()); err != nil {
					return err
				}
			}
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+s.q.migrations+
			" (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT version FROM "+s.q.migrations)
		if err != nil {
			return err
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		done := map[int]bool{}
		for _, v := range applied {
			done[int(v)] = true
		}
		for _, m := range migrations {
			if done[m.Version] || (upTo > 0 && m.Version > upTo) {
				continue
			}
			// No arguments: the simple protocol, which runs a file of statements.
			sql := strings.NewReplacer("{reservations}", ident(s.cfg, "reservations")).Replace(s.q.replacer.Replace(m.SQL))
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+s.q.migrations+" (version) VALUES ($1)", m.Version); err != nil {
				return err
			}
			s.log.InfoContext(ctx, "postgres: migrated", "migration", m.Name, "tables", s.q.events)
		}
		return nil
	})
	if err != nil {
		s.log.ErrorContext(ctx, "postgres: migration failed", "err", err)
		return wrap(ctx, err, "migrate")
	}
	s.migrated.Store(upTo == 0)
	return nil
}

// Package sqlcheckpointtest runs the checkpoint store suite (projectiontest's
// RunTx) on sqlcheckpoint over one database, with a read model in the
// same database: exactly-once across kills, reset, delete and faults. The
// tests of each dialect's module run it against their real server.
package sqlcheckpointtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// Run runs the suite with d's checkpoint store; open returns the database
// of one test (a shared one is fine: each test has its own table prefix,
// and its tables are dropped when it ends).
func Run(t *testing.T, d sqlcheckpoint.Dialect, open func(t *testing.T) *sql.DB) {
	env := func(t *testing.T) (*sqlcheckpoint.Store, *tally, *tally) {
		db := open(t)
		prefix := fmt.Sprintf("t%d_", rand.Uint32())
		cps, err := sqlcheckpoint.New(db, d, sqlcheckpoint.WithTablePrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, tbl := range []string{"projections", "rm_seen", "rm_counts", "rm2_seen", "rm2_counts", "effects"} {
				_, _ = db.Exec(`DROP TABLE IF EXISTS ` + prefix + tbl)
			}
		})
		mysql := d == sqlcheckpoint.MySQL
		return cps, &tally{db: db, prefix: prefix + "rm_", effects: prefix + "effects", mysql: mysql},
			&tally{db: db, prefix: prefix + "rm2_", effects: prefix + "effects", mysql: mysql}
	}
	projectiontest.RunTx(t, func(t *testing.T) projectiontest.Env[*sql.Tx] {
		cps, rm, second := env(t)
		return projectiontest.Env[*sql.Tx]{Checkpoints: cps, ReadModel: rm, Second: second}
	})
}

// RunEvents runs projectiontest.RunEvents with the events in stores from
// newEvents and the read models and checkpoints in a SQLite file of each
// subtest's own: the event store's tests check that parallel projectors
// over its log keep order per key and apply each event exactly once.
func RunEvents(t *testing.T, newEvents func(t *testing.T) eventsource.Store) {
	projectiontest.RunEvents(t, newEvents, func(t *testing.T) projectiontest.Env[*sql.Tx] {
		db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(t.TempDir(), "readmodel.db")))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		cps, err := sqlcheckpoint.New(db, sqlcheckpoint.SQLite)
		if err != nil {
			t.Fatal(err)
		}
		return projectiontest.Env[*sql.Tx]{Checkpoints: cps,
			ReadModel: &tally{db: db, prefix: "rm_", effects: "effects"}, Second: &tally{db: db, prefix: "rm2_", effects: "effects"}}
	})
}

// tally is projectiontest's read model in SQL.
type tally struct {
	db      *sql.DB
	prefix  string
	effects string // the table of side effects, shared by an Env's two read models
	mysql   bool
	failAt  atomic.Uint64
}

func (m *tally) FailAt(p uint64) { m.failAt.Store(p) }

func (m *tally) tablesQuery() string {
	if m.mysql {
		return `SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN (?, ?)`
	}
	return `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)`
}

// IsInitialized checks both tables: MySQL commits DDL at once, so a killed
// Init can leave one.
func (m *tally) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, m.tablesQuery(), m.prefix+"seen", m.prefix+"counts").Scan(&n)
	return n == 2, err
}

func (m *tally) Init(ctx context.Context, tx *sql.Tx) error {
	// The effects table first: MySQL commits each statement, and
	// IsInitialized checks the other two.
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS ` + m.effects + ` (position BIGINT PRIMARY KEY)`,
		`CREATE TABLE IF NOT EXISTS ` + m.prefix + `seen (position BIGINT PRIMARY KEY)`,
		`CREATE TABLE IF NOT EXISTS ` + m.prefix + `counts (stream VARCHAR(255) PRIMARY KEY, n BIGINT NOT NULL)`,
	} {
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return err
		}
	}
	return nil
}

func (m *tally) Apply(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	upsert := `INSERT INTO ` + m.prefix + `counts (stream, n) VALUES (?, 1) ON CONFLICT (stream) DO UPDATE SET n = n + 1`
	if m.mysql {
		upsert = `INSERT INTO ` + m.prefix + `counts (stream, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1`
	}
	for _, r := range recs {
		if r.Position == m.failAt.Load() {
			return errors.New("bad event")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+m.prefix+`seen (position) VALUES (?)`, int64(r.Position)); err != nil {
			return fmt.Errorf("position %d applied twice? %w", r.Position, err)
		}
		if _, err := tx.ExecContext(ctx, upsert, r.StreamID); err != nil {
			return err
		}
	}
	return nil
}

// SideEffects records each position acted on in the shared effects table;
// a second effect for one position fails on its primary key.
func (m *tally) SideEffects(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+m.effects+` (position) VALUES (?)`, int64(r.Position)); err != nil {
			return fmt.Errorf("side effect of position %d twice? %w", r.Position, err)
		}
	}
	return nil
}

func (m *tally) Effects(ctx context.Context) ([]uint64, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT position FROM `+m.effects+` ORDER BY position`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, uint64(p))
	}
	return out, rows.Err()
}

func (m *tally) Reset(ctx context.Context, tx *sql.Tx) error {
	for _, t := range []string{"seen", "counts"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+m.prefix+t); err != nil {
			return err
		}
	}
	return nil
}

func (m *tally) Delete(ctx context.Context, tx *sql.Tx) error {
	for _, t := range []string{"seen", "counts"} {
		if _, err := tx.ExecContext(ctx, `DROP TABLE `+m.prefix+t); err != nil {
			return err
		}
	}
	return nil
}

func (m *tally) Applied(ctx context.Context) (positions, counted int, exists bool, err error) {
	var n int
	if err := m.db.QueryRowContext(ctx, m.tablesQuery(), m.prefix+"seen", m.prefix+"counts").Scan(&n); err != nil || n < 2 {
		return 0, 0, false, err
	}
	if err := m.db.QueryRowContext(ctx, `SELECT count(*) FROM `+m.prefix+`seen`).Scan(&positions); err != nil {
		return 0, 0, true, err
	}
	err = m.db.QueryRowContext(ctx, `SELECT coalesce(sum(n), 0) FROM `+m.prefix+`counts`).Scan(&counted)
	return positions, counted, true, err
}

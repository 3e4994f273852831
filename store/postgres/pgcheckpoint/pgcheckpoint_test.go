package pgcheckpoint_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
	"github.com/eventsource-go/eventsource/store/postgres/pgcheckpoint"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Close()
	os.Exit(code)
}

// tally is projectiontest's read model in PostgreSQL.
type tally struct {
	pool   *pgxpool.Pool
	schema string
	prefix string // of its tables: "rm_", or "rm2_" for an Env's second read model
	failAt atomic.Uint64
}

func (m *tally) FailAt(p uint64) { m.failAt.Store(p) }

func (m *tally) table(name string) string {
	return pgx.Identifier{m.schema, m.prefix + name}.Sanitize()
}

// effects is the table of side effects, shared by an Env's two read models.
func (m *tally) effects() string { return pgx.Identifier{m.schema, "effects"}.Sanitize() }

func (m *tally) IsInitialized(ctx context.Context, tx pgx.Tx) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL`,
		m.table("seen"), m.table("counts")).Scan(&ok)
	return ok, err
}

func (m *tally) Init(ctx context.Context, tx pgx.Tx) error {
	for _, ddl := range []string{
		`CREATE TABLE ` + m.table("seen") + ` (position bigint PRIMARY KEY)`,
		`CREATE TABLE ` + m.table("counts") + ` (stream text PRIMARY KEY, n bigint NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + m.effects() + ` (position bigint PRIMARY KEY)`,
	} {
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return err
		}
	}
	return nil
}

func (m *tally) Apply(ctx context.Context, tx pgx.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if r.Position == m.failAt.Load() {
			return errors.New("bad event")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+m.table("seen")+` (position) VALUES ($1)`, int64(r.Position)); err != nil {
			return fmt.Errorf("position %d applied twice? %w", r.Position, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+m.table("counts")+` AS c (stream, n) VALUES ($1, 1)
			ON CONFLICT (stream) DO UPDATE SET n = c.n + 1`, r.StreamID); err != nil {
			return err
		}
	}
	return nil
}

// SideEffects records each position acted on in the shared effects table;
// a second effect for one position fails on its primary key.
func (m *tally) SideEffects(ctx context.Context, tx pgx.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if _, err := tx.Exec(ctx, `INSERT INTO `+m.effects()+` (position) VALUES ($1)`, int64(r.Position)); err != nil {
			return fmt.Errorf("side effect of position %d twice? %w", r.Position, err)
		}
	}
	return nil
}

func (m *tally) Effects(ctx context.Context) ([]uint64, error) {
	rows, err := m.pool.Query(ctx, `SELECT position FROM `+m.effects()+` ORDER BY position`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (uint64, error) {
		var p int64
		err := r.Scan(&p)
		return uint64(p), err
	})
}

func (m *tally) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE `+m.table("seen")+`, `+m.table("counts"))
	return err
}

func (m *tally) Delete(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `DROP TABLE `+m.table("seen")+`, `+m.table("counts"))
	return err
}

func (m *tally) Applied(ctx context.Context) (positions, counted int, exists bool, err error) {
	if err := m.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, m.table("seen")).Scan(&exists); err != nil || !exists {
		return 0, 0, false, err
	}
	if err := m.pool.QueryRow(ctx, `SELECT count(*) FROM `+m.table("seen")).Scan(&positions); err != nil {
		return 0, 0, true, err
	}
	err = m.pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM `+m.table("counts")).Scan(&counted)
	return positions, counted, true, err
}

// TestConformance gives each subtest its own schema for the checkpoints and
// the read model.
func TestConformance(t *testing.T) {
	projectiontest.RunTx(t, func(t *testing.T) projectiontest.Env[pgx.Tx] {
		p := pgtest.Pool(t)
		schema := pgtest.Schema(t, "es_p_")
		cps, err := pgcheckpoint.New(p, pgcheckpoint.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		return projectiontest.Env[pgx.Tx]{Checkpoints: cps,
			ReadModel: &tally{pool: p, schema: schema, prefix: "rm_"}, Second: &tally{pool: p, schema: schema, prefix: "rm2_"}}
	})
}

func TestBadConfiguration(t *testing.T) {
	p := pgtest.Pool(t)
	for _, bad := range []pgcheckpoint.Option{pgcheckpoint.WithTablePrefix("bad prefix;"), pgcheckpoint.WithSchema("1x"), pgcheckpoint.WithSchema(`a"b`)} {
		if _, err := pgcheckpoint.New(p, bad); !errors.Is(err, eventsource.ErrInvalidConfig) {
			t.Fatalf("bad option: %v", err)
		}
	}
	if _, err := pgcheckpoint.New(nil); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("nil pool: %v", err)
	}
}

// TestConcurrentCreate starts many stores on one fresh schema at once (as
// processes starting together would): creating the table must not fail.
func TestConcurrentCreate(t *testing.T) {
	t.Parallel()
	p := pgtest.Pool(t)
	schema := pgtest.Schema(t, "es_p_") + "_x" // missing: created on first use too
	t.Cleanup(func() { _, _ = p.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgcheckpoint.New(p, pgcheckpoint.WithSchema(schema), pgcheckpoint.WithTablePrefix("c_"))
			if err == nil {
				err = s.SetStatus(context.Background(), fmt.Sprint("p", i), projection.StatusStopped)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := p.QueryRow(context.Background(), `SELECT count(*) FROM `+schema+`.c_projections WHERE status = 'stopped'`).Scan(&n); err != nil || n != 8 {
		t.Fatalf("rows: %d, %v", n, err)
	}
}

package projection_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// The subscription benchmarks on the core module's stores; the PostgreSQL
// and MySQL packages run the same ones on theirs.

// sqliteTarget returns a SQLite store holding n events: kept in the temp
// directory and reused by later runs of the same size, or new and removed
// afterwards when n is 0.
func sqliteTarget(b *testing.B, n int) *sqlite.Store {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("eventsource-bench-%d.db", n))
	if n == 0 {
		path = filepath.Join(b.TempDir(), "latency.db")
	}
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	projectiontest.Seed(b, s, n)
	return s
}

// BenchmarkCatchUp measures a catch-up subscription with a no-op handler
// reading the whole log, beside a raw ordered SELECT of the same rows.
func BenchmarkCatchUp(b *testing.B) {
	n := projectiontest.BenchEvents()
	b.Run("memory", func(b *testing.B) {
		mem := memory.New()
		projectiontest.Seed(b, mem, n)
		projectiontest.BenchCatchUp(b, mem, n, nil)
	})
	b.Run("sqlite", func(b *testing.B) {
		lite := sqliteTarget(b, n)
		projectiontest.BenchCatchUp(b, lite, n, func(ctx context.Context) (int, error) {
			return projectiontest.ScanSQL(ctx, lite.DB(), `SELECT `+projectiontest.RawColumns+` FROM es_events ORDER BY position`)
		})
	})
}

// BenchmarkLiveLatency measures the time from an append's return (its
// commit) to the live subscriber's handler, reporting the median and p99.
func BenchmarkLiveLatency(b *testing.B) {
	for name, open := range map[string]func(b *testing.B) eventsource.Store{
		"memory": func(*testing.B) eventsource.Store { return memory.New() },
		"sqlite": func(b *testing.B) eventsource.Store { return sqliteTarget(b, 0) },
	} {
		b.Run(name, func(b *testing.B) { projectiontest.BenchLiveLatency(b, open(b)) })
	}
}

// upserts is the rebuild benchmarks' read model: one upsert per event of
// the account's row (count and last position), a prepared statement per
// batch.
type upserts struct{ table string }

func (m upserts) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = ?`, m.table).Scan(&n)
	return n == 1, err
}

func (m upserts) Init(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE `+m.table+` (account TEXT PRIMARY KEY, n INTEGER NOT NULL, last INTEGER NOT NULL)`)
	return err
}

func (m upserts) Apply(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	st, err := tx.PrepareContext(ctx, upsertSQL(m.table))
	if err != nil {
		return err
	}
	defer st.Close()
	for _, r := range recs {
		if _, err := st.ExecContext(ctx, r.StreamID, int64(r.Position)); err != nil {
			return err
		}
	}
	return nil
}

func upsertSQL(table string) string {
	return `INSERT INTO ` + table + ` (account, n, last) VALUES (?, 1, ?) ON CONFLICT (account) DO UPDATE SET n = n + 1, last = excluded.last`
}

func (m upserts) Reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM `+m.table)
	return err
}

func (m upserts) Delete(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DROP TABLE `+m.table)
	return err
}

// rawRebuild is the baseline by hand: the events table read in order with
// every column scanned, and the same upsert per event in transactions of
// batch events.
func rawRebuild(ctx context.Context, db *sql.DB, table string, batch int) (int, error) {
	if _, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS `+table); err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE `+table+` (account TEXT PRIMARY KEY, n INTEGER NOT NULL, last INTEGER NOT NULL)`); err != nil {
		return 0, err
	}
	rows, err := db.QueryContext(ctx, `SELECT `+projectiontest.RawColumns+` FROM es_events ORDER BY position`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	var tx *sql.Tx
	var st *sql.Stmt
	for rows.Next() {
		var r eventsource.Record
		var md sql.NullString
		var at any
		if err := rows.Scan(&r.Position, &r.StreamID, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &md, &at); err != nil {
			return n, err
		}
		if tx == nil {
			if tx, err = db.BeginTx(ctx, nil); err != nil {
				return n, err
			}
			if st, err = tx.PrepareContext(ctx, upsertSQL(table)); err != nil {
				return n, err
			}
		}
		if _, err := st.ExecContext(ctx, r.StreamID, int64(r.Position)); err != nil {
			return n, err
		}
		if n++; n%batch == 0 {
			st.Close()
			if err := tx.Commit(); err != nil {
				return n, err
			}
			tx = nil
		}
	}
	if tx != nil {
		st.Close()
		if err := tx.Commit(); err != nil {
			return n, err
		}
	}
	return n, rows.Err()
}

// BenchmarkRebuild rebuilds a read model that upserts one row per event
// from the whole log (ES_BENCH_EVENTS, 100,000 by default; BENCHMARKS.md
// uses 1,000,000) with 4 workers and transactions of 1,000 events,
// alternating with the raw baseline, five rounds:
//
//	ES_BENCH_EVENTS=1000000 go test -run '^$' -bench Rebuild -benchtime 1x ./projection/
func BenchmarkRebuild(b *testing.B) {
	n := projectiontest.BenchEvents()
	lite := sqliteTarget(b, n)
	cps, err := sqlcheckpoint.New(lite.DB(), sqlcheckpoint.SQLite, sqlcheckpoint.WithTablePrefix("bench_"))
	if err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	projectiontest.BenchRebuild(b, projectiontest.RebuildTarget[*sql.Tx]{
		Events: lite, N: n, Checkpoints: cps,
		ReadModel: func(round int) projection.ReadModel[*sql.Tx] {
			table := fmt.Sprint("bench_rm_", round)
			if _, err := lite.DB().Exec(`DROP TABLE IF EXISTS ` + table); err != nil {
				b.Fatal(err)
			}
			return upserts{table}
		},
		Raw: func(ctx context.Context, round int) (int, error) {
			return rawRebuild(ctx, lite.DB(), fmt.Sprint("bench_raw_", round), batch)
		},
	}, 4, batch, 5)
}

// BenchmarkLiveLag: a projector with 4 workers follows appends made at
// 2,000 per second for 10 seconds, applying each to the upsert read model;
// the lag is from an append's return to the commit that applied it.
//
//	go test -run '^$' -bench LiveLag -benchtime 1x ./projection/
func BenchmarkLiveLag(b *testing.B) {
	lite := sqliteTarget(b, 0)
	cps, err := sqlcheckpoint.New(lite.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		b.Fatal(err)
	}
	projectiontest.BenchLiveLag(b, lite, cps, upserts{"lag"}, 4, 2000, 10*time.Second)
}

package pgcheckpoint_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
	"github.com/eventsource-go/eventsource/store/postgres/pgcheckpoint"
)

// upserts is the rebuild benchmark's read model: one upsert per event of
// the account's row, sent as one pgx batch per transaction.
type upserts struct {
	pool  *pgxpool.Pool
	table string
}

func (m upserts) IsInitialized(ctx context.Context, tx pgx.Tx) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, m.table).Scan(&ok)
	return ok, err
}

func (m upserts) Init(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `CREATE TABLE `+m.table+` (account text PRIMARY KEY, n bigint NOT NULL, last bigint NOT NULL)`)
	return err
}

func upsertSQL(table string) string {
	return `INSERT INTO ` + table + ` AS t (account, n, last) VALUES ($1, 1, $2) ON CONFLICT (account) DO UPDATE SET n = t.n + 1, last = excluded.last`
}

func (m upserts) Apply(ctx context.Context, tx pgx.Tx, recs []eventsource.Record) error {
	var b pgx.Batch
	for _, r := range recs {
		b.Queue(upsertSQL(m.table), r.StreamID, int64(r.Position))
	}
	return tx.SendBatch(ctx, &b).Close()
}

func (m upserts) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE `+m.table)
	return err
}

func (m upserts) Delete(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `DROP TABLE `+m.table)
	return err
}

// rawRebuild is the baseline by hand: the events table read in order with
// every column scanned, and the same upserts in one batch per transaction
// of batch events.
func rawRebuild(ctx context.Context, pool *pgxpool.Pool, schema, table string, batch int) (int, error) {
	if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS `+table+`; CREATE TABLE `+table+` (account text PRIMARY KEY, n bigint NOT NULL, last bigint NOT NULL)`); err != nil {
		return 0, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	rows, err := conn.Query(ctx, `SELECT `+projectiontest.RawColumns+` FROM `+schema+`.es_events ORDER BY position`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	var b pgx.Batch
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, &b).Close() })
		b = pgx.Batch{}
		return err
	}
	for rows.Next() {
		var r eventsource.Record
		var md []byte
		if err := rows.Scan(&r.Position, &r.StreamID, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &md, &r.RecordedAt); err != nil {
			return n, err
		}
		b.Queue(upsertSQL(table), r.StreamID, int64(r.Position))
		if n++; n%batch == 0 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// BenchmarkRebuild rebuilds a read model that upserts one row per event
// from the whole log (ES_BENCH_EVENTS, 100,000 by default; BENCHMARKS.md
// uses 1,000,000, kept in schema es_bench_<n> between runs) with 4
// workers and transactions of 1,000 events, alternating with the raw
// baseline, five rounds:
//
//	cd store/postgres && ES_BENCH_EVENTS=1000000 go test -run '^$' -bench Rebuild -benchtime 1x ./pgcheckpoint/
func BenchmarkRebuild(b *testing.B) {
	n := projectiontest.BenchEvents()
	pool := pgtest.Pool(b)
	ctx := context.Background()
	schema := fmt.Sprint("es_bench_", n)
	if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema); err != nil {
		b.Fatal(err)
	}
	s := postgres.New(pool, postgres.WithSchema(schema))
	b.Cleanup(func() { s.Close() })
	projectiontest.Seed(b, s, n)
	cps, err := pgcheckpoint.New(pool, pgcheckpoint.WithSchema(schema), pgcheckpoint.WithTablePrefix("bench_"))
	if err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	projectiontest.BenchRebuild(b, projectiontest.RebuildTarget[pgx.Tx]{
		Events: s, N: n, Checkpoints: cps,
		ReadModel: func(round int) projection.ReadModel[pgx.Tx] {
			table := fmt.Sprintf("%s.bench_rm_%d", schema, round)
			if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS `+table); err != nil {
				b.Fatal(err)
			}
			return upserts{pool, table}
		},
		Raw: func(ctx context.Context, round int) (int, error) {
			return rawRebuild(ctx, pool, schema, fmt.Sprintf("%s.bench_raw_%d", schema, round), batch)
		},
	}, 4, batch, 5)
}

// BenchmarkLiveLag: a projector with 4 workers follows appends made at
// 2,000 per second for 10 seconds; the lag is from an append's return to
// the commit that applied it.
//
//	cd store/postgres && go test -run '^$' -bench LiveLag -benchtime 1x ./pgcheckpoint/
func BenchmarkLiveLag(b *testing.B) {
	pool := pgtest.Pool(b)
	schema := pgtest.Schema(b, "es_lag_")
	s := postgres.New(pool, postgres.WithSchema(schema))
	b.Cleanup(func() { s.Close() })
	cps, err := pgcheckpoint.New(pool, pgcheckpoint.WithSchema(schema))
	if err != nil {
		b.Fatal(err)
	}
	projectiontest.BenchLiveLag(b, s, cps, upserts{pool, schema + ".lag"}, 4, 2000, 10*time.Second)
}

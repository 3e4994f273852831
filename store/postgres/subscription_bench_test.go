package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
	"github.com/eventsource-go/eventsource/store/storetest"
)

// benchSchema returns a store in schema es_bench_<n> holding n events,
// kept for later runs of the same size; with n = 0 a fresh one, dropped
// afterwards.
func benchSchema(b *testing.B, n int) (*postgres.Store, string) {
	if n == 0 {
		return newStore(b)
	}
	pool := pgtest.Pool(b)
	schema := fmt.Sprint("es_bench_", n)
	if _, err := pool.Exec(context.Background(), `CREATE SCHEMA IF NOT EXISTS `+schema); err != nil {
		b.Fatal(err)
	}
	s := postgres.New(pool, postgres.WithSchema(schema))
	b.Cleanup(func() { s.Close() })
	projectiontest.Seed(b, s, n)
	return s, schema
}

// BenchmarkCatchUp measures a catch-up subscription with a no-op handler
// reading the whole log, beside a raw ordered SELECT of the same rows.
func BenchmarkCatchUp(b *testing.B) {
	n := projectiontest.BenchEvents()
	s, schema := benchSchema(b, n)
	pool := pgtest.Pool(b)
	projectiontest.BenchCatchUp(b, s, n, func(ctx context.Context) (int, error) {
		rows, err := pool.Query(ctx, `SELECT `+projectiontest.RawColumns+` FROM `+schema+`.es_events ORDER BY position`)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var r eventsource.Record
			var md []byte
			if err := rows.Scan(&r.Position, &r.StreamID, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &md, &r.RecordedAt); err != nil {
				return n, err
			}
			n++
		}
		return n, rows.Err()
	})
}

// BenchmarkLiveLatency measures the time from an append's return (its
// commit) to the live subscriber's handler, reporting the median and p99.
func BenchmarkLiveLatency(b *testing.B) {
	s, _ := benchSchema(b, 0)
	projectiontest.BenchLiveLatency(b, s)
}

// BenchmarkLoad100kSnapshotted: a 100,500-event aggregate with a snapshot
// every 1,000 events (a snapshot and 500 events per load).
func BenchmarkLoad100kSnapshotted(b *testing.B) {
	s, _ := newStore(b)
	storetest.BenchLoadSnapshotted(b, s, 100_500)
}

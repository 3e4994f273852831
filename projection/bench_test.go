package projection_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/store/mysql"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// benchEvents is the size of the catch-up dataset: ES_BENCH_EVENTS, or
// 100,000. The SQL datasets are kept (a file in the temp directory, a schema,
// a table prefix) and reused by later runs of the same size.
func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("ES_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

type benchTarget struct {
	name  string
	store eventsource.Store
	raw   func(ctx context.Context) (int, error) // a raw ordered SELECT of the same rows
}

func seed(b *testing.B, s eventsource.Store, n int) {
	b.Helper()
	ctx := context.Background()
	have := 0
	for range s.ReadAll(ctx, 0, eventsource.Filter{}) {
		have++
	}
	if have == n {
		return // kept from an earlier run
	}
	if have != 0 {
		b.Fatalf("benchmark dataset holds %d events, want 0 or %d: drop it", have, n)
	}
	batch := make([]eventsource.Record, 1000)
	for i := 0; i < n; i += len(batch) {
		for j := range batch {
			batch[j] = eventsource.Record{Type: "MoneyDeposited", Codec: "json", Data: []byte(`{"Amount":12345,"Note":"benchmark deposit"}`), Metadata: map[string]string{"teller": "7"}}
		}
		if _, err := s.Append(ctx, fmt.Sprint("account-", (i/1000)%500), eventsource.Any, batch[:min(len(batch), n-i)]); err != nil {
			b.Fatal(err)
		}
	}
}

const rawColumns = `position, stream_id, version, event_id, type, codec, data, metadata, recorded_at`

func scanSQL(ctx context.Context, db *sql.DB, query string) (int, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var r eventsource.Record
		var md sql.NullString
		var at any
		if err := rows.Scan(&r.Position, &r.StreamID, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &md, &at); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// targets returns one store of each kind holding n events. With n = 0 the
// stores are new and empty, and removed afterwards.
func targets(b *testing.B, n int) []benchTarget {
	ctx := context.Background()
	var out []benchTarget
	name := fmt.Sprint(n)
	if n == 0 {
		name = fmt.Sprintf("tmp%d", time.Now().UnixNano()%1e9)
	}

	mem := memory.New()
	seed(b, mem, n)
	out = append(out, benchTarget{name: "memory", store: mem})

	path := filepath.Join(os.TempDir(), "eventsource-bench-"+name+".db")
	if n == 0 {
		path = filepath.Join(b.TempDir(), "latency.db")
	}
	lite, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lite.Close() })
	seed(b, lite, n)
	out = append(out, benchTarget{name: "sqlite", store: lite, raw: func(ctx context.Context) (int, error) {
		return scanSQL(ctx, lite.DB(), `SELECT `+rawColumns+` FROM es_events ORDER BY position`)
	}})

	if pgURL := testenv.Postgres.URL(b); pgURL != "" {
		pool, err := pgxpool.New(ctx, pgURL)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		schema := "es_bench_" + name
		if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Cleanup(func() { pool.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
		}
		pg := postgres.New(pool, postgres.WithSchema(schema))
		b.Cleanup(func() { pg.Close() })
		seed(b, pg, n)
		out = append(out, benchTarget{name: "postgres", store: pg, raw: func(ctx context.Context) (int, error) {
			rows, err := pool.Query(ctx, `SELECT `+rawColumns+` FROM `+schema+`.es_events ORDER BY position`)
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
		}})
	}

	if dsn := testenv.MySQL.URL(b); dsn != "" {
		prefix := "esbench" + name + "_"
		my, err := mysql.Open(ctx, dsn, mysql.WithTablePrefix(prefix))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if n == 0 {
				for _, t := range []string{"events", "streams", "position", "schema_migrations"} {
					my.DB().Exec(`DROP TABLE IF EXISTS ` + prefix + t)
				}
			}
			my.Close()
		})
		seed(b, my, n)
		table := prefix + "events"
		out = append(out, benchTarget{name: "mysql", store: my, raw: func(ctx context.Context) (int, error) {
			return scanSQL(ctx, my.DB(), `SELECT `+rawColumns+` FROM `+table+` ORDER BY position`)
		}})
	}
	return out
}

// BenchmarkCatchUp measures a catch-up subscription with a no-op handler
// reading the whole log, beside a raw ordered SELECT of the same rows.
func BenchmarkCatchUp(b *testing.B) {
	n := benchEvents()
	for _, tg := range targets(b, n) {
		b.Run(tg.name+"/subscription", func(b *testing.B) {
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.Background())
				seen := 0
				err := projection.NewSubscription(tg.store).RunBatches(ctx, 1000, func(_ context.Context, recs []eventsource.Record) error {
					if seen += len(recs); seen >= n {
						cancel()
					}
					return nil
				})
				cancel()
				if !errors.Is(err, context.Canceled) || seen != n {
					b.Fatalf("%d of %d events: %v", seen, n, err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
		if tg.raw == nil {
			continue
		}
		b.Run(tg.name+"/raw-select", func(b *testing.B) {
			for b.Loop() {
				got, err := tg.raw(context.Background())
				if err != nil || got != n {
					b.Fatalf("%d of %d rows: %v", got, n, err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkLiveLatency measures the time from an append's return (its
// commit) to the live subscriber's handler, reporting the median and p99.
func BenchmarkLiveLatency(b *testing.B) {
	for _, tg := range targets(b, 0) {
		b.Run(tg.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var head uint64
			if h, ok := tg.store.(eventsource.HeadReader); ok {
				head, _ = h.Head(ctx)
			}
			arrived := make(chan time.Time, 1)
			ready := make(chan struct{})
			sub := projection.NewSubscription(tg.store, projection.From(head+1), projection.OnCaughtUp(func() {
				select {
				case <-ready:
				default:
					close(ready)
				}
			}))
			go sub.Run(ctx, func(_ context.Context, r eventsource.Record) error {
				if r.StreamID == "latency" {
					arrived <- time.Now()
				}
				return nil
			})
			<-ready
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				if _, err := tg.store.Append(ctx, "latency", eventsource.Any, []eventsource.Record{{Type: "Ping"}}); err != nil {
					b.Fatal(err)
				}
				committed := time.Now()
				select {
				case at := <-arrived:
					lat = append(lat, max(at.Sub(committed), 0))
				case <-time.After(10 * time.Second):
					b.Fatal("no delivery in 10s")
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

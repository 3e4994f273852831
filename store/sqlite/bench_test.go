package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

func benchStore(b *testing.B) *sqlite.Store {
	b.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func records(n int) []eventsource.Record {
	out := make([]eventsource.Record, n)
	for i := range out {
		out[i] = eventsource.Record{Type: "Bench", Codec: "json", Data: []byte(`{"amount":100,"note":"benchmark"}`), Metadata: map[string]string{"user": "bench"}}
	}
	return out
}

func eventsPerSec(b *testing.B, n int) {
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppend1 appends single events to many streams, one writer.
func BenchmarkAppend1(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := s.Append(ctx, fmt.Sprint("s-", i%1000), eventsource.Any, records(1)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	eventsPerSec(b, 1)
}

// BenchmarkAppend1Parallel: 8 writers.
func BenchmarkAppend1Parallel(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(4) // × GOMAXPROCS(2) = 8 writers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := n.Add(1)
		i := 0
		for pb.Next() {
			if _, err := s.Append(ctx, fmt.Sprintf("w%d-%d", w, i%100), eventsource.Any, records(1)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	eventsPerSec(b, 1)
}

func BenchmarkAppend100(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := s.Append(ctx, fmt.Sprint("s-", i), eventsource.NoStream, records(100)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	eventsPerSec(b, 100)
}

// BenchmarkRawInsert1 is the baseline for BenchmarkAppend1: the same
// database settings, one transaction with one INSERT of a row of the same
// shape into a table with the same indexes.
func BenchmarkRawInsert1(b *testing.B) {
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(b.TempDir(), "raw.db")))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE events (position INTEGER PRIMARY KEY AUTOINCREMENT, stream_id TEXT NOT NULL, version INTEGER NOT NULL,
		event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, codec TEXT NOT NULL, data BLOB NOT NULL, metadata TEXT, recorded_at INTEGER NOT NULL,
		UNIQUE (stream_id, version))`); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO events (stream_id, version, event_id, type, codec, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			fmt.Sprint("s-", i%1000), i, eventsource.NewEventID(), "Bench", "json", []byte(`{"amount":100,"note":"benchmark"}`), `{"user":"bench"}`, time.Now().UnixNano()); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		i++
	}
	eventsPerSec(b, 1)
}

func BenchmarkReadStream10000(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for i := 0; i < 10000; i += 1000 {
		if _, err := s.Append(ctx, "big", eventsource.Exact(int64(i)), records(1000)); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		n := 0
		for _, err := range s.ReadStream(ctx, "big", 1, 0) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 10000 {
			b.Fatal(n)
		}
	}
	eventsPerSec(b, 10000)
}

// BenchmarkRawReadStream10000 is the baseline for BenchmarkReadStream10000:
// one ordered SELECT of the same rows, scanned into the same Go types,
// metadata left undecoded.
func BenchmarkRawReadStream10000(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for i := 0; i < 10000; i += 1000 {
		if _, err := s.Append(ctx, "big", eventsource.Exact(int64(i)), records(1000)); err != nil {
			b.Fatal(err)
		}
	}
	rawSelect(b, s, 10000, `SELECT position, stream_id, version, event_id, type, codec, data, metadata, recorded_at FROM es_events WHERE stream_id = ? ORDER BY version`, "big")
}

// rawSelect runs query, which selects want rows, once per iteration,
// scanning each row into a record's Go types as the store does.
func rawSelect(b *testing.B, s *sqlite.Store, want int, query string, args ...any) {
	ctx := context.Background()
	for b.Loop() {
		rows, err := s.DB().QueryContext(ctx, query, args...)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var r eventsource.Record
			var md sql.NullString
			var at int64
			if err := rows.Scan(&r.Position, &r.StreamID, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &md, &at); err != nil {
				b.Fatal(err)
			}
			n++
		}
		rows.Close()
		if n != want {
			b.Fatal(n)
		}
	}
	eventsPerSec(b, want)
}

// readAllFixture returns a store holding 10,000 events over 100 streams.
func readAllFixture(b *testing.B) *sqlite.Store {
	s := benchStore(b)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if _, err := s.Append(ctx, fmt.Sprint("s-", i), eventsource.NoStream, records(100)); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkReadAll10000 reads the whole global log (a catch-up) with no
// filter, in the store's pages, from a store with no stream rules.
func BenchmarkReadAll10000(b *testing.B) {
	benchReadAll(b, readAllFixture(b))
}

// BenchmarkReadAll10000Ruled: the same log, 10 of its 100 streams with an
// active rule that retires nothing yet (MaxAge of a day), so each record's
// stream rule is looked up. (Rules that can hide no stored record — values
// only, or a cut already scavenged — are inert and cost nothing:
// migration 005.)
func BenchmarkReadAll10000Ruled(b *testing.B) {
	s := readAllFixture(b)
	for i := 0; i < 10; i++ {
		if _, err := s.SetStreamMetadata(context.Background(), fmt.Sprint("s-", i), eventsource.NoStream, eventsource.StreamMetadata{MaxAge: 24 * time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
	benchReadAll(b, s)
}

func benchReadAll(b *testing.B, s *sqlite.Store) {
	ctx := context.Background()
	for b.Loop() {
		n := 0
		for _, err := range s.ReadAll(ctx, 0, eventsource.Filter{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 10000 {
			b.Fatal(n)
		}
	}
	eventsPerSec(b, 10000)
}

// BenchmarkRawReadAll10000 is the baseline for BenchmarkReadAll10000: one
// SELECT of the same rows in position order, scanned into the same Go
// types, metadata left undecoded.
func BenchmarkRawReadAll10000(b *testing.B) {
	rawSelect(b, readAllFixture(b), 10000, `SELECT position, stream_id, version, event_id, type, codec, data, metadata, recorded_at FROM es_events ORDER BY position`)
}

// upsertModel is the benchmarks' inline read model: one upsert per event.
type upsertModel struct{}

func (upsertModel) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'bench_heads'`).Scan(&n)
	return n == 1, err
}

func (upsertModel) Init(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE bench_heads (stream TEXT PRIMARY KEY, version INTEGER NOT NULL)`)
	return err
}

func (upsertModel) Apply(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO bench_heads VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET version = excluded.version`, r.StreamID, r.Version); err != nil {
			return err
		}
	}
	return nil
}

func (upsertModel) Reset(context.Context, *sql.Tx) error  { return nil }
func (upsertModel) Delete(context.Context, *sql.Tx) error { return nil }

// BenchmarkInlineAppend: single-event appends to 1,000 streams, one writer,
// without and with an inline projection that upserts a row per event,
// alternating in rounds within the process (round=N/inline=…), each on a
// fresh database.
func BenchmarkInlineAppend(b *testing.B) {
	for round := 1; round <= 5; round++ {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("round=%d/inline=%v", round, on), func(b *testing.B) {
				var opts []sqlite.Option
				if on {
					opts = append(opts, sqlite.WithInline("heads", upsertModel{}))
				}
				s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), opts...)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				ctx := context.Background()
				i := 0
				for b.Loop() {
					if _, err := s.Append(ctx, fmt.Sprint("s-", i%1000), eventsource.Any, records(1)); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

package postgres_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
)

// Each benchmark runs beside its raw-pgx baseline on a table with the same
// columns and indexes (position from a sequence instead of the store's
// transaction-ID scheme, no streams table, no version check).

const rawTable = `CREATE TABLE %s.raw_events (
	position    bigserial PRIMARY KEY,
	stream_id   text COLLATE "C" NOT NULL,
	version     bigint NOT NULL,
	event_id    text NOT NULL UNIQUE,
	type        text NOT NULL,
	codec       text NOT NULL,
	data        bytea NOT NULL,
	metadata    jsonb,
	recorded_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (stream_id, version))`

var benchData = []byte(`{"user":"ada","email":"ada@example.com","plan":"pro","seats":12,"note":"a payload of about a hundred bytes"}`)

func benchRecords(n int) []eventsource.Record {
	out := make([]eventsource.Record, n)
	for i := range out {
		out[i] = eventsource.Record{Type: "UserUpdated", Codec: "json", Data: benchData, Metadata: map[string]string{"tenant": "t1"}}
	}
	return out
}

func benchStore(b *testing.B, opts ...postgres.Option) (*postgres.Store, string) {
	b.Helper()
	s, schema := newStore(b, opts...)
	if _, err := pgtest.Pool(b).Exec(context.Background(), fmt.Sprintf(rawTable, schema)); err != nil {
		b.Fatal(err)
	}
	return s, schema
}

func reportEvents(b *testing.B, events int64) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

var eventSeq atomic.Int64

func nextEventID() string { return "raw-" + strconv.FormatInt(eventSeq.Add(1), 10) }

func BenchmarkAppend1(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	recs := benchRecords(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Append(ctx, "bench-1", eventsource.Exact(int64(i)), recs); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, int64(b.N))
}

func BenchmarkRawInsert1(b *testing.B) {
	_, schema := benchStore(b)
	p := pgtest.Pool(b)
	ctx := context.Background()
	sql := `INSERT INTO ` + schema + `.raw_events (stream_id, version, event_id, type, codec, data, metadata)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Exec(ctx, sql, "bench-1", int64(i+1), nextEventID(), "UserUpdated", "json", benchData, `{"tenant":"t1"}`); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, int64(b.N))
}

// 8 concurrent writers (parallelism 4 × GOMAXPROCS 2 on the benchmark
// machine), each on a stream of its own.
func BenchmarkAppend1Parallel8(b *testing.B) {
	for _, notify := range []bool{true, false} {
		b.Run(fmt.Sprintf("notify=%v", notify), func(b *testing.B) {
			s, _ := benchStore(b, postgres.WithNotify(notify))
			ctx := context.Background()
			var writer atomic.Int64
			b.SetParallelism(8 / max(1, runtimeProcs()))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				stream := fmt.Sprintf("bench-%d", writer.Add(1))
				recs := benchRecords(1)
				for v := int64(0); pb.Next(); v++ {
					if _, err := s.Append(ctx, stream, eventsource.Exact(v), recs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportEvents(b, int64(b.N))
		})
	}
}

func BenchmarkRawInsert1Parallel8(b *testing.B) {
	for _, notify := range []bool{false, true} {
		b.Run(fmt.Sprintf("notify=%v", notify), func(b *testing.B) { rawInsertParallel(b, notify) })
	}
}

// rawInsertParallel inserts with 8 writers; notify adds a pg_notify to each
// insert's transaction, which is what an in-transaction NOTIFY costs.
func rawInsertParallel(b *testing.B, notify bool) {
	_, schema := benchStore(b)
	p := pgtest.Pool(b)
	ctx := context.Background()
	sql := `INSERT INTO ` + schema + `.raw_events (stream_id, version, event_id, type, codec, data, metadata)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
	if notify {
		sql = `WITH i AS (` + sql + ` RETURNING 1) SELECT pg_notify('` + schema + `.raw', '') FROM i`
	}
	var writer atomic.Int64
	b.SetParallelism(8 / max(1, runtimeProcs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		stream := fmt.Sprintf("bench-%d", writer.Add(1))
		for v := int64(1); pb.Next(); v++ {
			if _, err := p.Exec(ctx, sql, stream, v, nextEventID(), "UserUpdated", "json", benchData, `{"tenant":"t1"}`); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportEvents(b, int64(b.N))
}

func BenchmarkAppend100(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	recs := benchRecords(100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Append(ctx, "bench-100", eventsource.Exact(int64(i)*100), recs); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, int64(b.N)*100)
}

func BenchmarkRawCopy100(b *testing.B) {
	_, schema := benchStore(b)
	p := pgtest.Pool(b)
	ctx := context.Background()
	cols := []string{"stream_id", "version", "event_id", "type", "codec", "data", "metadata"}
	rows := make([][]any, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range rows {
			rows[j] = []any{"bench-100", int64(i*100 + j + 1), nextEventID(), "UserUpdated", "json", benchData, `{"tenant":"t1"}`}
		}
		if _, err := p.CopyFrom(ctx, pgx.Identifier{schema, "raw_events"}, cols, pgx.CopyFromRows(rows)); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, int64(b.N)*100)
}

// readFixture is one stream of 100,000 events, in the store's tables and in
// raw_events, shared by the read benchmarks (and dropped with the package's
// test schemas when the benchmark binary's TestMain ends... see
// cleanupFixture).
const readEvents = 100_000

var (
	fixtureOnce   sync.Once
	fixtureStore  *postgres.Store
	fixtureSchema string
	fixtureErr    error
)

func readFixture(b *testing.B) (*postgres.Store, string) {
	b.Helper()
	p := pgtest.Pool(b)
	fixtureOnce.Do(func() {
		ctx := context.Background()
		fixtureSchema = testenv.Name("es_bench_")
		if _, fixtureErr = p.Exec(ctx, "CREATE SCHEMA "+fixtureSchema); fixtureErr != nil {
			return
		}
		cleanups = append(cleanups, func() {
			fixtureStore.Close()
			p.Exec(context.Background(), "DROP SCHEMA "+fixtureSchema+" CASCADE")
		})
		fixtureStore = postgres.New(p, postgres.WithSchema(fixtureSchema))
		if fixtureErr = fixtureStore.Migrate(ctx); fixtureErr != nil {
			return
		}
		recs := benchRecords(1000)
		for v := 0; v < readEvents; v += len(recs) {
			if _, fixtureErr = fixtureStore.Append(ctx, "read-1", eventsource.Exact(int64(v)), recs); fixtureErr != nil {
				return
			}
		}
		if _, fixtureErr = p.Exec(ctx, fmt.Sprintf(rawTable, fixtureSchema)); fixtureErr != nil {
			return
		}
		_, fixtureErr = p.Exec(ctx, `INSERT INTO `+fixtureSchema+`.raw_events (stream_id, version, event_id, type, codec, data, metadata)
			SELECT stream_id, version, 'raw-' || event_id, type, codec, data, metadata FROM `+fixtureSchema+`.es_events ORDER BY position`)
		if fixtureErr == nil {
			_, fixtureErr = p.Exec(ctx, "VACUUM ANALYZE "+fixtureSchema+".es_events, "+fixtureSchema+".raw_events")
		}
	})
	if fixtureErr != nil {
		b.Fatal(fixtureErr)
	}
	return fixtureStore, fixtureSchema
}

func BenchmarkReadStream(b *testing.B) {
	s, _ := readFixture(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		for _, err := range s.ReadStream(ctx, "read-1", 1, 0) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != readEvents {
			b.Fatalf("read %d events", n)
		}
	}
	reportEvents(b, int64(b.N)*readEvents)
}

func BenchmarkRawSelectStream(b *testing.B) {
	_, schema := readFixture(b)
	rawSelect(b, `SELECT position, stream_id, version, event_id, type, codec, data, metadata, recorded_at
		FROM `+schema+`.raw_events WHERE stream_id = $1 ORDER BY version`, "read-1")
}

func BenchmarkReadAll(b *testing.B) {
	s, _ := readFixture(b)
	benchReadAll(b, s)
}

// benchReadAll reads the whole global log of s, the readEvents of the read
// fixture, b.N times.
func benchReadAll(b *testing.B, s *postgres.Store) {
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		for _, err := range s.ReadAll(ctx, 0, eventsource.Filter{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != readEvents {
			b.Fatalf("read %d events", n)
		}
	}
	reportEvents(b, int64(b.N)*readEvents)
}

// BenchmarkReadAllWithRules reads the same 100,000 events as ReadAll from
// a store where another stream has a rule (a soft delete): every record
// then costs a probe of the rules.
func BenchmarkReadAllWithRules(b *testing.B) {
	_, fixture := readFixture(b)
	s, schema := newStore(b)
	ctx := context.Background()
	p := pgtest.Pool(b)
	for _, sql := range []string{
		`INSERT INTO ` + schema + `.es_events SELECT * FROM ` + fixture + `.es_events`,
		`INSERT INTO ` + schema + `.es_streams SELECT * FROM ` + fixture + `.es_streams`,
		`VACUUM ANALYZE ` + schema + `.es_events`,
	} {
		if _, err := p.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, "deleted", eventsource.NoStream, benchRecords(2)); err != nil {
		b.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "deleted", eventsource.Any); err != nil {
		b.Fatal(err)
	}
	benchReadAll(b, s)
}

func BenchmarkRawSelectAll(b *testing.B) {
	_, schema := readFixture(b)
	rawSelect(b, `SELECT position, stream_id, version, event_id, type, codec, data, metadata, recorded_at
		FROM `+schema+`.raw_events ORDER BY position`)
}

// rawSelect reads every row of one query into records, as the store does.
func rawSelect(b *testing.B, sql string, args ...any) {
	p := pgtest.Pool(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rows, err := p.Query(ctx, sql, args...)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var r eventsource.Record
			var pos int64
			if err := rows.Scan(&pos, &r.StreamID, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &r.Metadata, &r.RecordedAt); err != nil {
				b.Fatal(err)
			}
			r.Position = uint64(pos)
			r.RecordedAt = r.RecordedAt.UTC()
			n++
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		if n != readEvents {
			b.Fatalf("read %d rows", n)
		}
	}
	reportEvents(b, int64(b.N)*readEvents)
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// upsertModel is the benchmarks' inline read model: one upsert per event
// into a table of the store's schema.
type upsertModel struct{ table string }

func (m upsertModel) IsInitialized(ctx context.Context, tx pgx.Tx) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", m.table).Scan(&ok)
	return ok, err
}

func (m upsertModel) Init(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "CREATE TABLE "+m.table+" (stream text PRIMARY KEY, version bigint NOT NULL)")
	return err
}

func (m upsertModel) Apply(ctx context.Context, tx pgx.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if _, err := tx.Exec(ctx, "INSERT INTO "+m.table+" VALUES ($1, $2) ON CONFLICT (stream) DO UPDATE SET version = excluded.version", r.StreamID, r.Version); err != nil {
			return err
		}
	}
	return nil
}

func (upsertModel) Reset(context.Context, pgx.Tx) error  { return nil }
func (upsertModel) Delete(context.Context, pgx.Tx) error { return nil }

// BenchmarkInlineAppend: single-event appends to 1,000 streams, one writer,
// without and with an inline projection that upserts a row per event,
// alternating in rounds within the process (round=N/inline=…), each in a
// fresh schema.
func BenchmarkInlineAppend(b *testing.B) {
	for round := 1; round <= 5; round++ {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("round=%d/inline=%v", round, on), func(b *testing.B) {
				s, schema := newStore(b)
				if on {
					s = postgres.New(pgtest.Pool(b), postgres.WithSchema(schema), postgres.WithInline("heads", upsertModel{table: schema + ".heads"}))
					defer s.Close()
				}
				ctx := context.Background()
				i := 0
				for b.Loop() {
					if _, err := s.Append(ctx, fmt.Sprint("s-", i%1000), eventsource.Any, benchRecords(1)); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/mysql"
)

// Each benchmark runs the store beside a raw database/sql baseline on the
// same pool (Open's settings: interpolateParams on) and a table shaped like
// the store's events table, with an AUTO_INCREMENT key and no version check,
// no counter and no transaction beyond autocommit.

const rawTable = `CREATE TABLE %s (
    position BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    stream_id VARBINARY(1020) NOT NULL,
    version BIGINT NOT NULL,
    event_id VARBINARY(512) NOT NULL,
    type VARBINARY(1020) NOT NULL,
    codec VARBINARY(1020) NOT NULL,
    data LONGBLOB NOT NULL,
    metadata JSON NULL,
    recorded_at DATETIME(6) NOT NULL,
    UNIQUE KEY stream_version (stream_id, version),
    UNIQUE KEY event_id (event_id)
) ENGINE=InnoDB`

const rawCols = "stream_id, version, event_id, type, codec, data, metadata, recorded_at"

var benchData = []byte(`{"name":"Ada Lovelace","email":"ada@example.com","n":12345}`)

func benchRecord() eventsource.Record {
	return eventsource.Record{Type: "UserRenamed", Codec: "json", Data: benchData, Metadata: map[string]string{"tenant": "a"}}
}

// benchStore opens a store on a fresh prefix and makes the raw table beside it.
func benchStore(b *testing.B) (*mysql.Store, string) {
	b.Helper()
	dsn := testenv.MySQL.URL(b)
	prefix := randomPrefix(b)
	s, err := mysql.Open(context.Background(), dsn, mysql.WithTablePrefix(prefix))
	if err != nil {
		b.Fatal(err)
	}
	s.DB().SetMaxIdleConns(16)
	raw := "`" + prefix + "raw`"
	if _, err := s.DB().Exec(fmt.Sprintf(rawTable, raw)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.DB().Exec("DROP TABLE IF EXISTS " + raw)
		dropTables(s.DB(), prefix)
		s.Close()
	})
	return s, raw
}

func perSecond(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// parallel runs b.N operations split across writers goroutines; op gets the
// writer number and its own sequence number.
func parallel(b *testing.B, writers int, op func(w, i int) error) {
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ResetTimer()
	for w := 0; w < writers; w++ {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := op(w, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func BenchmarkAppendSingle(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("store/writers=%d", writers), func(b *testing.B) {
			s, _ := benchStore(b)
			ctx := context.Background()
			parallel(b, writers, func(w, i int) error {
				_, err := s.Append(ctx, fmt.Sprintf("bench-%d", w), eventsource.Exact(int64(i)), []eventsource.Record{benchRecord()})
				return err
			})
			perSecond(b, b.N)
		})
		// Streams with MaxCount: each append also moves the stream's cut
		// (the rules read and write an append to a ruled stream pays).
		b.Run(fmt.Sprintf("store/maxcount/writers=%d", writers), func(b *testing.B) {
			s, _ := benchStore(b)
			ctx := context.Background()
			for w := 0; w < writers; w++ {
				if _, err := s.SetStreamMetadata(ctx, fmt.Sprintf("bench-%d", w), eventsource.NoStream, eventsource.StreamMetadata{MaxCount: 100}); err != nil {
					b.Fatal(err)
				}
			}
			parallel(b, writers, func(w, i int) error {
				_, err := s.Append(ctx, fmt.Sprintf("bench-%d", w), eventsource.Exact(int64(i)), []eventsource.Record{benchRecord()})
				return err
			})
			perSecond(b, b.N)
		})
		b.Run(fmt.Sprintf("raw/writers=%d", writers), func(b *testing.B) {
			s, raw := benchStore(b)
			ctx := context.Background()
			q := "INSERT INTO " + raw + " (" + rawCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))"
			parallel(b, writers, func(w, i int) error {
				_, err := s.DB().ExecContext(ctx, q, fmt.Sprintf("bench-%d", w), i+1, eventsource.NewEventID(), "UserRenamed", "json", benchData, `{"tenant":"a"}`)
				return err
			})
			perSecond(b, b.N)
		})
	}
}

func BenchmarkAppendBatch100(b *testing.B) {
	const n = 100
	b.Run("store", func(b *testing.B) {
		s, _ := benchStore(b)
		ctx := context.Background()
		batch := make([]eventsource.Record, n)
		for i := range batch {
			batch[i] = benchRecord()
		}
		parallel(b, 1, func(_, i int) error {
			_, err := s.Append(ctx, "batch-1", eventsource.Exact(int64(i*n)), batch)
			return err
		})
		perSecond(b, b.N*n)
	})
	b.Run("raw", func(b *testing.B) {
		s, raw := benchStore(b)
		ctx := context.Background()
		q := "INSERT INTO " + raw + " (" + rawCols + ") VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6)), ", n), ", ")
		args := make([]any, 0, 7*n)
		parallel(b, 1, func(_, i int) error {
			args = args[:0]
			for j := 0; j < n; j++ {
				args = append(args, "batch-1", i*n+j+1, eventsource.NewEventID(), "UserRenamed", "json", benchData, `{"tenant":"a"}`)
			}
			_, err := s.DB().ExecContext(ctx, q, args...)
			return err
		})
		perSecond(b, b.N*n)
	})
}

const readEvents = 100_000

// seedRead fills the store with one stream of readEvents records and copies
// them into the raw table.
func seedRead(b *testing.B) (*mysql.Store, string) {
	b.Helper()
	s, raw := benchStore(b)
	ctx := context.Background()
	batch := make([]eventsource.Record, 1000)
	for i := 0; i < readEvents; i += len(batch) {
		for j := range batch {
			batch[j] = benchRecord()
		}
		if _, err := s.Append(ctx, "read-1", eventsource.Exact(int64(i)), batch); err != nil {
			b.Fatal(err)
		}
	}
	var prefix string
	if err := s.DB().QueryRow("SELECT TRIM(TRAILING 'raw`' FROM TRIM(LEADING '`' FROM ?))", raw).Scan(&prefix); err != nil {
		b.Fatal(err)
	}
	if _, err := s.DB().Exec("INSERT INTO " + raw + " (position, " + rawCols + ") SELECT position, " + rawCols + " FROM `" + prefix + "events` ORDER BY position"); err != nil {
		b.Fatal(err)
	}
	return s, raw
}

func BenchmarkRead100k(b *testing.B) {
	s, raw := seedRead(b)
	ctx := context.Background()
	count := func(b *testing.B, seq func(yield func(eventsource.Record, error) bool)) {
		n := 0
		for _, err := range seq {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != readEvents {
			b.Fatalf("read %d records, want %d", n, readEvents)
		}
	}
	b.Run("store/stream", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			count(b, s.ReadStream(ctx, "read-1", 1, 0))
		}
		perSecond(b, b.N*readEvents)
	})
	b.Run("store/all", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			count(b, s.ReadAll(ctx, 0, eventsource.Filter{}))
		}
		perSecond(b, b.N*readEvents)
	})
	b.Run("raw/select", func(b *testing.B) {
		q := "SELECT position, " + rawCols + " FROM " + raw + " ORDER BY position"
		for i := 0; i < b.N; i++ {
			if n := rawRead(b, s.DB(), q); n != readEvents {
				b.Fatalf("read %d rows", n)
			}
		}
		perSecond(b, b.N*readEvents)
	})
	// With rules on another stream, each record's stream is looked up in
	// {prefix}stream_rules (the store with no rules at all reads above);
	// then with a rule on the stream read itself.
	for _, ruled := range []struct{ name, stream string }{{"rules-elsewhere", "other-1"}, {"rules-here", "read-1"}} {
		b.Run("store/all/"+ruled.name, func(b *testing.B) {
			if _, err := s.SetStreamMetadata(ctx, ruled.stream, eventsource.Any, eventsource.StreamMetadata{MaxAge: time.Hour}); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				count(b, s.ReadAll(ctx, 0, eventsource.Filter{}))
			}
			perSecond(b, b.N*readEvents)
		})
	}
	b.Run("store/stream/rules-here", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			count(b, s.ReadStream(ctx, "read-1", 1, 0))
		}
		perSecond(b, b.N*readEvents)
	})
}

// rawRead scans every row of q into the same Go values a Record holds.
func rawRead(b *testing.B, db *sql.DB, q string) int {
	rows, err := db.Query(q)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var r eventsource.Record
		var md sql.NullString
		var at time.Time
		if err := rows.Scan(&r.Position, &r.StreamID, &r.Version, &r.EventID, &r.Type, &r.Codec, &r.Data, &md, &at); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return n
}

// upsertModel is the benchmarks' inline read model: one upsert per event
// into a table named after the store's prefix.
type upsertModel struct{ table string }

func (m upsertModel) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", m.table).Scan(&n)
	return n == 1, err
}

func (m upsertModel) Init(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS `"+m.table+"` (stream VARBINARY(200) PRIMARY KEY, version BIGINT NOT NULL) ENGINE=InnoDB")
	return err
}

func (m upsertModel) Apply(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if _, err := tx.ExecContext(ctx, "INSERT INTO `"+m.table+"` VALUES (?, ?) ON DUPLICATE KEY UPDATE version = VALUES(version)", r.StreamID, r.Version); err != nil {
			return err
		}
	}
	return nil
}

func (upsertModel) Reset(context.Context, *sql.Tx) error  { return nil }
func (upsertModel) Delete(context.Context, *sql.Tx) error { return nil }

// BenchmarkInlineAppend: single-event appends to 1,000 streams, one writer,
// without and with an inline projection that upserts a row per event,
// alternating in rounds within the process (round=N/inline=…), each on
// fresh tables.
func BenchmarkInlineAppend(b *testing.B) {
	for round := 1; round <= 5; round++ {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("round=%d/inline=%v", round, on), func(b *testing.B) {
				prefix := randomPrefix(b)
				opts := []mysql.Option{mysql.WithTablePrefix(prefix)}
				if on {
					opts = append(opts, mysql.WithInline("heads", upsertModel{table: prefix + "heads"}))
				}
				s, err := mysql.Open(context.Background(), testenv.MySQL.URL(b), opts...)
				if err != nil {
					b.Fatal(err)
				}
				defer func() {
					s.DB().Exec("DROP TABLE IF EXISTS `" + prefix + "heads`")
					dropTables(s.DB(), prefix)
					s.Close()
				}()
				ctx := context.Background()
				i := 0
				for b.Loop() {
					if _, err := s.Append(ctx, fmt.Sprint("s-", i%1000), eventsource.Any, []eventsource.Record{benchRecord()}); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

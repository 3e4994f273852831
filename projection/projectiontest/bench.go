package projectiontest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

// BenchEvents is the size of the catch-up dataset: ES_BENCH_EVENTS, or
// 100,000.
func BenchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("ES_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// Seed fills s with n deposits over 500 streams, in appends of 1,000,
// unless it holds exactly n events already (a dataset kept from an earlier
// run of the same size).
func Seed(b *testing.B, s eventsource.Store, n int) {
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

// BenchCatchUp measures a catch-up subscription with a no-op handler
// reading the n events of s ("subscription") and, when raw is not nil, the
// raw-driver baseline beside it ("raw-select"): raw reads the same rows in
// order and returns how many it read.
func BenchCatchUp(b *testing.B, s eventsource.Store, n int, raw func(ctx context.Context) (int, error)) {
	b.Run("subscription", func(b *testing.B) {
		for b.Loop() {
			ctx, cancel := context.WithCancel(context.Background())
			seen := 0
			err := projection.NewSubscription(s).RunBatches(ctx, 1000, func(_ context.Context, recs []eventsource.Record) error {
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
	if raw == nil {
		return
	}
	b.Run("raw-select", func(b *testing.B) {
		for b.Loop() {
			got, err := raw(context.Background())
			if err != nil || got != n {
				b.Fatalf("%d of %d rows: %v", got, n, err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchLiveLatency measures the time from an append's return (its commit)
// to the live subscriber's handler on s, reporting the median and p99.
func BenchLiveLatency(b *testing.B, s eventsource.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var head uint64
	if h, ok := s.(eventsource.HeadReader); ok {
		head, _ = h.Head(ctx)
	}
	arrived := make(chan time.Time, 1)
	ready := make(chan struct{})
	sub := projection.NewSubscription(s, projection.From(head+1), projection.OnCaughtUp(func() {
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
		if _, err := s.Append(ctx, "latency", eventsource.Any, []eventsource.Record{{Type: "Ping"}}); err != nil {
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
}

// RawColumns are the columns of the SQL stores' events tables a raw
// baseline reads.
const RawColumns = `position, stream_id, version, event_id, type, codec, data, metadata, recorded_at`

// ScanSQL runs query, which selects RawColumns, and scans every row as a
// driver user would: the raw baseline of a database/sql store.
func ScanSQL(ctx context.Context, db *sql.DB, query string) (int, error) {
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

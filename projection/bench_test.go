package projection_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
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

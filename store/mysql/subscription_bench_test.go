package mysql_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventsource-go/eventsource/projection/projectiontest"
	"github.com/eventsource-go/eventsource/store/mysql"
)

// benchTables returns a store on tables esbench<n>_* holding n events,
// kept for later runs of the same size; with n = 0 fresh ones, dropped
// afterwards.
func benchTables(b *testing.B, n int) (*mysql.Store, string) {
	if n == 0 {
		return newStore(b)
	}
	prefix := fmt.Sprintf("esbench%d_", n)
	s := mysql.New(testDB(b), mysql.WithTablePrefix(prefix))
	b.Cleanup(func() { s.Close() })
	projectiontest.Seed(b, s, n)
	return s, prefix
}

// BenchmarkCatchUp measures a catch-up subscription with a no-op handler
// reading the whole log, beside a raw ordered SELECT of the same rows.
func BenchmarkCatchUp(b *testing.B) {
	n := projectiontest.BenchEvents()
	s, prefix := benchTables(b, n)
	projectiontest.BenchCatchUp(b, s, n, func(ctx context.Context) (int, error) {
		return projectiontest.ScanSQL(ctx, s.DB(), `SELECT `+projectiontest.RawColumns+` FROM `+prefix+`events ORDER BY position`)
	})
}

// BenchmarkLiveLatency measures the time from an append's return (its
// commit) to the live subscriber's handler, reporting the median and p99.
func BenchmarkLiveLatency(b *testing.B) {
	s, _ := benchTables(b, 0)
	projectiontest.BenchLiveLatency(b, s)
}

package projection_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// TestRebuildMillion rebuilds a read model upserting one row per event
// from a log of 1,000,000 events (100,000 under the race detector) with 4
// workers, killed twice on the way: the rows count every event once, and
// Verify gives a clean bill.
func TestRebuildMillion(t *testing.T) {
	n := 1_000_000
	if raceDetector {
		n = 100_000
	}
	ctx := context.Background()
	events, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	batch := make([]eventsource.Record, 1000)
	for i := 0; i < n; i += len(batch) {
		for j := range batch {
			batch[j] = eventsource.Record{Type: "MoneyDeposited", Data: []byte(`{"Amount":1}`)}
		}
		if _, err := events.Append(ctx, fmt.Sprint("account-", (i/1000)%500), eventsource.Any, batch); err != nil {
			t.Fatal(err)
		}
	}
	cps, err := sqlcheckpoint.New(events.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for run := 0; ; run++ {
		rctx, cancel := context.WithCancel(ctx)
		if run < 2 {
			time.AfterFunc(time.Duration(500+run*700)*time.Millisecond, cancel) // killed on the way
		}
		caught := make(chan struct{})
		p := projection.NewProjector("million", events, cps, upserts{"million"}, projection.WithWorkers(4), projection.WithBatchSize(1000),
			projection.OnCaughtUp(func() {
				select {
				case <-caught:
				default:
					close(caught)
				}
			}))
		done := make(chan error, 1)
		go func() { done <- p.Run(rctx) }()
		select {
		case <-caught:
			cancel()
			<-done
		case err := <-done:
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("run %d: %v", run, err)
			}
			continue
		}
		break
	}
	elapsed := time.Since(start)
	var rows, sum int64
	if err := events.DB().QueryRow(`SELECT count(*), sum(n) FROM million`).Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	if accounts := int64(min(500, n/1000)); rows != accounts || sum != int64(n) {
		t.Fatalf("read model: %d rows counting %d events, want %d rows counting %d", rows, sum, accounts, n)
	}
	rep, err := projection.Verify(ctx, events, cps, "million")
	if err != nil || !rep.OK() || rep.Events != uint64(n) {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	t.Logf("%d events rebuilt in %v with two kills on the way (%.0f events/s); Verify: %d ranges clean", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), rep.Ranges)
}

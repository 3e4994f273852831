package projectiontest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
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
	if h, ok := eventsource.As[eventsource.HeadReader](s); ok {
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

// RebuildTarget is what BenchRebuild measures: a projector rebuilding a
// read model over events (holding n events) with its checkpoints in
// Checkpoints, and the raw baseline beside it.
type RebuildTarget[Tx any] struct {
	Events      eventsource.Store
	N           int
	Checkpoints projection.TxCheckpointStore[Tx]
	// ReadModel returns the read model of one round, in tables of its own
	// (fresh: the round rebuilds from position 0).
	ReadModel func(round int) projection.ReadModel[Tx]
	// Raw is the baseline of one round: the same work by hand with the
	// driver (read the events table in order, upsert the same row per
	// event in transactions of the same size), into tables of its own. It
	// returns how many events it applied.
	Raw func(ctx context.Context, round int) (int, error)
}

// BenchRebuild runs rounds of a projector rebuild with workers workers and
// batch-sized transactions, alternating with the raw baseline (A B A B …),
// and reports the median and range of each in events/s.
func BenchRebuild[Tx any](b *testing.B, t RebuildTarget[Tx], workers, batch, rounds int) {
	ctx := context.Background()
	var lib, raw []float64
	for b.Loop() {
		for round := 1; round <= rounds; round++ {
			name := fmt.Sprintf("rebuild-%d-%d", time.Now().UnixNano(), round)
			rctx, cancel := context.WithCancel(ctx)
			caught := make(chan struct{})
			var once bool
			p := projection.NewProjector(name, t.Events, t.Checkpoints, t.ReadModel(round), projection.WithWorkers(workers),
				projection.WithBatchSize(batch), projection.WithPolling(time.Millisecond, 5*time.Millisecond),
				projection.OnCaughtUp(func() {
					if !once {
						once = true
						close(caught)
					}
				}))
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- p.Run(rctx) }()
			select {
			case <-caught:
			case err := <-done:
				b.Fatalf("round %d: Run = %v", round, err)
			}
			elapsed := time.Since(start)
			cancel()
			<-done
			if cp := p.Checkpoint(); cp.Position == 0 {
				b.Fatalf("round %d: nothing applied", round)
			}
			lib = append(lib, float64(t.N)/elapsed.Seconds())

			start = time.Now()
			n, err := t.Raw(ctx, round)
			if err != nil || n != t.N {
				b.Fatalf("raw round %d: %d of %d events, %v", round, n, t.N, err)
			}
			raw = append(raw, float64(t.N)/time.Since(start).Seconds())
			b.Logf("round %d: projector %.0f events/s, raw %.0f events/s", round, lib[len(lib)-1], raw[len(raw)-1])
		}
	}
	report := func(name string, v []float64) {
		s := slices.Clone(v)
		slices.Sort(s)
		b.ReportMetric(s[len(s)/2], name+"-median-events/s")
		b.ReportMetric(s[0], name+"-min-events/s")
		b.ReportMetric(s[len(s)-1], name+"-max-events/s")
	}
	report("projector", lib)
	report("raw", raw)
}

type stampKey struct{}

// stamped is a checkpoint store whose InTx notes, when a transaction
// commits, the positions the read model applied in it.
type stamped[Tx any] struct {
	projection.TxCheckpointStore[Tx]
	committed func(positions []uint64, at time.Time)
}

func (s stamped[Tx]) InTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	var positions []uint64
	err := s.TxCheckpointStore.InTx(context.WithValue(ctx, stampKey{}, &positions), fn)
	if err == nil && len(positions) > 0 {
		s.committed(positions, time.Now())
	}
	return err
}

// noting is a read model that notes the positions it applies in the
// transaction's list (stamped).
type noting[Tx any] struct{ projection.ReadModel[Tx] }

func (m noting[Tx]) Apply(ctx context.Context, tx Tx, recs []eventsource.Record) error {
	if err := m.ReadModel.Apply(ctx, tx, recs); err != nil {
		return err
	}
	if ps, ok := ctx.Value(stampKey{}).(*[]uint64); ok {
		for _, r := range recs {
			*ps = append(*ps, r.Position)
		}
	}
	return nil
}

// BenchLiveLag appends single events at rate per second for d (from four
// goroutines, each on a schedule of its own) while a projector with
// workers workers follows live, and reports the lag from each append's
// return to the commit of the read model transaction that applied it:
// median, p99 and max, and the rate reached.
func BenchLiveLag[Tx any](b *testing.B, events eventsource.Store, cps projection.TxCheckpointStore[Tx], rm projection.ReadModel[Tx], workers, rate int, d time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	appended := map[uint64]time.Time{}
	committedAt := map[uint64]time.Time{}
	var head uint64
	if h, ok := eventsource.As[eventsource.HeadReader](events); ok {
		head, _ = h.Head(ctx)
	}
	ready := make(chan struct{})
	var once sync.Once
	name := fmt.Sprintf("lag-%d", time.Now().UnixNano())
	p := projection.NewProjector(name, events, stamped[Tx]{cps, func(ps []uint64, at time.Time) {
		mu.Lock()
		for _, pos := range ps {
			committedAt[pos] = at
		}
		mu.Unlock()
	}}, noting[Tx]{rm}, projection.WithWorkers(workers), projection.WithPolling(time.Millisecond, 100*time.Millisecond),
		projection.OnCaughtUp(func() { once.Do(func() { close(ready) }) }))
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		b.Fatal(err)
	}
	var total int
	for b.Loop() {
		interval := time.Second / time.Duration(rate)
		n := int(d / interval)
		start := time.Now()
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < n; i += 4 {
					if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
						time.Sleep(wait)
					}
					res, err := events.Append(ctx, fmt.Sprint("lag-", i%500), eventsource.Any, []eventsource.Record{{Type: "Ping"}})
					if err != nil {
						b.Error(err)
						return
					}
					at := time.Now()
					mu.Lock()
					appended[res.FirstPosition] = at
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "appends/s")
		total += n
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := len(committedAt)
		mu.Unlock()
		if got >= total {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d appends applied 30s after the last", got, total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	lags := make([]time.Duration, 0, total)
	for pos, a := range appended {
		if pos > head {
			lags = append(lags, max(committedAt[pos].Sub(a), 0))
		}
	}
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-ms")
}

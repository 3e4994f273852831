package projectiontest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

// The parallel projector's tests: order per key, exactly once across kills
// with the number of workers changing between runs, parking with the key's
// order kept (or not), replay and discard, a blue/green rebuild killed at
// random moments with side effects exactly once, and Verify's clean bill
// after each.

func parallelTests[Tx any]() []struct {
	name string
	fn   func(*testing.T, eventsource.Store, Env[Tx])
} {
	return []struct {
		name string
		fn   func(*testing.T, eventsource.Store, Env[Tx])
	}{
		{"ParallelOrderPerKey", testParallelOrder[Tx]},
		{"ParallelExactlyOnceAcrossKills", testParallelKills[Tx]},
		{"ParkKeepsOrder", testParkKeepsOrder[Tx]},
		{"ParkedKeyContinues", testParkedKeyContinues[Tx]},
		{"BlueGreenAcrossKills", testBlueGreen[Tx]},
	}
}

// ordered wraps a Tally and records, per stream, whether Apply ever saw a
// position at or below one it saw before. A failed Apply (its transaction
// rolls back) is forgotten; its tests have no other reason to roll back.
type ordered[Tx any] struct {
	Tally[Tx]
	mu         sync.Mutex
	last       map[string]uint64
	bad        []string
	inFlight   int
	concurrent int // the most Apply calls seen at once
}

func newOrdered[Tx any](t Tally[Tx]) *ordered[Tx] {
	return &ordered[Tx]{Tally: t, last: map[string]uint64{}}
}

func (o *ordered[Tx]) Apply(ctx context.Context, tx Tx, recs []eventsource.Record) error {
	o.mu.Lock()
	o.inFlight++
	o.concurrent = max(o.concurrent, o.inFlight)
	before := map[string]uint64{}
	for _, r := range recs {
		if _, ok := before[r.StreamID]; !ok {
			before[r.StreamID] = o.last[r.StreamID]
		}
		if r.Position <= o.last[r.StreamID] {
			o.bad = append(o.bad, fmt.Sprintf("%s: position %d after %d", r.StreamID, r.Position, o.last[r.StreamID]))
		}
		o.last[r.StreamID] = r.Position
	}
	o.mu.Unlock()
	err := o.Tally.Apply(ctx, tx, recs)
	o.mu.Lock()
	o.inFlight--
	if err != nil {
		for k, v := range before {
			o.last[k] = v
		}
	}
	o.mu.Unlock()
	return err
}

func (o *ordered[Tx]) violations() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.bad)
}

// appendSpread appends n events one at a time over streams streams.
func appendSpread(t testing.TB, s eventsource.Store, n, streams int) {
	for i := 0; i < n; i++ {
		if _, err := s.Append(context.Background(), fmt.Sprint("k-", i%streams), eventsource.Any, []eventsource.Record{{Type: "Tick"}}); err != nil {
			t.Error(err)
			return
		}
	}
}

// verifyClean fails t unless Verify finds every event handled exactly once
// up to want.
func verifyClean(t *testing.T, events eventsource.Store, cps projection.CheckpointStore, name string, want uint64) {
	t.Helper()
	rep, err := projection.Verify(context.Background(), events, cps, name)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Events != want || rep.To != want {
		t.Fatalf("Verify of %s: %d events up to %d in %d ranges, mismatches %v; want a clean bill for %d", name, rep.Events, rep.To, rep.Ranges, rep.Mismatches, want)
	}
}

// runInBackground starts run and returns a function that cancels it and
// returns what it returned.
func runInBackground(run func(context.Context) error) (stop func() error, done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- run(ctx) }()
	return func() error { cancel(); return <-ch }, ch
}

func testParallelOrder[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	appendSpread(t, events, 500, 13)
	rm := newOrdered(e.ReadModel)
	p := projection.NewProjector("tally", events, e.Checkpoints, rm, projection.WithWorkers(4), projection.WithBatchSize(10),
		projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	stop, _ := runInBackground(p.Run)
	appendSpread(t, events, 300, 13)
	waitFor(t, func() bool { return p.Checkpoint().Position == 800 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if bad := rm.violations(); len(bad) > 0 {
		t.Fatalf("order per key broken: %v", bad[:min(len(bad), 5)])
	}
	if n, counted := applied(t, e.ReadModel); n != 800 || counted != 800 {
		t.Fatalf("applied %d, counted %d; want 800", n, counted)
	}
	cp, err := e.Checkpoints.Load(context.Background(), "tally")
	if err != nil || cp.Position != 800 || len(cp.Done) != 0 {
		t.Fatalf("checkpoint: position %d, done %v, %v", cp.Position, cp.Done, err)
	}
	t.Logf("at most %d batches applied at once", rm.concurrent)
	verifyClean(t, events, e.Checkpoints, "tally", 800)
}

// testParallelKills kills a parallel projector at random moments while a
// writer appends, with a different number of workers in each run.
func testParallelKills[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	const total = 400
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); appendSpread(t, events, total, 11) }()
	rng := rand.New(rand.NewPCG(3, 4))
	window, stuck, last := 30, 0, uint64(0)
	for round := 0; ; round++ {
		p := projection.NewProjector("tally", events, e.Checkpoints, e.ReadModel,
			projection.WithWorkers(1+rng.IntN(4)), projection.WithBatchSize(1+rng.IntN(20)))
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(2+rng.IntN(window))*time.Millisecond)
		err := p.Run(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("round %d: %v", round, err)
		}
		cp, err := e.Checkpoints.Load(context.Background(), "tally")
		if err != nil {
			t.Fatal(err)
		}
		if cp.Position == total && len(cp.Done) == 0 {
			break
		}
		if round > 3000 {
			t.Fatalf("no progress after %d rounds: checkpoint %d (kill window %d ms)", round, cp.Position, window)
		}
		if cp.Position != last {
			last, stuck, window = cp.Position, 0, max(30, window/2)
		} else if stuck++; stuck%5 == 0 && window < 5000 {
			window *= 2
		}
	}
	wg.Wait()
	if n, counted := applied(t, e.ReadModel); n != total || counted != total {
		t.Fatalf("read model applied %d events and counted %d, want exactly %d", n, counted, total)
	}
	verifyClean(t, events, e.Checkpoints, "tally", total)
}

// With appendTicks's 7 streams, position p is in stream s-((p-1)%7): the
// stream of position 16 holds 23, 30, … 65 after it, of 70.
var behind16 = []uint64{23, 30, 37, 44, 51, 58, 65}

func testParkKeepsOrder[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	ctx := context.Background()
	appendTicks(t, events, 70)
	e.ReadModel.FailAt(16)
	rm := newOrdered(e.ReadModel)
	p := projection.NewProjector("tally", events, e.Checkpoints, rm, projection.WithWorkers(3), projection.WithBatchSize(4),
		projection.WithErrorPolicy(projection.ErrorPolicy{Retries: 1, Backoff: time.Millisecond, Park: true}),
		projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	if err := runUntil(p.Run, func() bool { return p.Checkpoint().Position == 70 }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want it to park and go on", err)
	}
	parked, err := p.Parked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 8 || parked[0].Position != 16 || parked[0].Behind != 0 || parked[0].Error == "" || parked[0].Attempts != 2 || parked[0].At.IsZero() {
		t.Fatalf("parked: %+v; want 16 with its error and 2 attempts, and the 7 events of its stream behind it", parked)
	}
	for i, pos := range behind16 {
		if pe := parked[i+1]; pe.Position != pos || pe.Behind != 16 || pe.Key != parked[0].Key {
			t.Fatalf("parked[%d] = %+v, want position %d behind 16", i+1, pe, pos)
		}
	}
	if n, _ := applied(t, e.ReadModel); n != 62 {
		t.Fatalf("applied %d, want the 62 events of other streams and before 16", n)
	}
	verifyClean(t, events, e.Checkpoints, "tally", 70)

	// Fixed: replaying 16 replays the events behind it, in order.
	e.ReadModel.FailAt(0)
	if err := p.ReplayParked(ctx, 16); err != nil {
		t.Fatal(err)
	}
	if err := runUntil(p.Run, func() bool {
		cp, _ := e.Checkpoints.Load(ctx, "tally")
		return len(cp.Parked) == 0 && cp.Request == projection.RequestNone
	}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if n, _ := applied(t, e.ReadModel); n != 70 {
		cp, _ := e.Checkpoints.Load(ctx, "tally")
		t.Fatalf("applied %d after the replay, want 70; checkpoint %+v", n, cp)
	}
	if bad := rm.violations(); len(bad) > 0 {
		t.Fatalf("order per key broken: %v", bad)
	}
	if err := p.ReplayParked(ctx, 16); !errors.Is(err, projection.ErrNotParked) {
		t.Fatalf("replaying an event no longer parked: %v, want ErrNotParked", err)
	}
	verifyClean(t, events, e.Checkpoints, "tally", 70)
}

func testParkedKeyContinues[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	ctx := context.Background()
	appendTicks(t, events, 70)
	e.ReadModel.FailAt(16)
	p := projection.NewProjector("tally", events, e.Checkpoints, e.ReadModel, projection.WithWorkers(2),
		projection.WithErrorPolicy(projection.ErrorPolicy{Park: true, ParkedKeyContinues: true}),
		projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	if err := runUntil(p.Run, func() bool { return p.Checkpoint().Position == 70 }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	parked, _ := p.Parked(ctx)
	if len(parked) != 1 || parked[0].Position != 16 || parked[0].Attempts != 1 {
		t.Fatalf("parked: %+v; want 16 alone", parked)
	}
	if n, _ := applied(t, e.ReadModel); n != 69 {
		t.Fatalf("applied %d, want 69", n)
	}
	// Still failing: a replay parks it again, its attempts counted.
	if err := p.ReplayParked(ctx); err != nil {
		t.Fatal(err)
	}
	if err := runUntil(p.Run, func() bool {
		cp, _ := e.Checkpoints.Load(ctx, "tally")
		return cp.Request == projection.RequestNone
	}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if parked, _ = p.Parked(ctx); len(parked) != 1 || parked[0].Attempts != 2 || parked[0].Replay {
		t.Fatalf("after a failed replay: %+v; want 16 parked with 2 attempts", parked)
	}
	if err := p.DiscardParked(ctx, 16); err != nil {
		t.Fatal(err)
	}
	cp, _ := e.Checkpoints.Load(ctx, "tally")
	if len(cp.Parked) != 0 || !slices.Contains(cp.Skipped, 16) {
		t.Fatalf("after discard: parked %v, skipped %v", cp.Parked, cp.Skipped)
	}
	if err := p.DiscardParked(ctx, 16); !errors.Is(err, projection.ErrNotParked) {
		t.Fatalf("discarding twice: %v, want ErrNotParked", err)
	}
	verifyClean(t, events, e.Checkpoints, "tally", 70)
}

// testBlueGreen rebuilds version 2 into the second read model while
// version 1 serves and a writer appends, killing version 2 at random
// moments, also during its take-over. Afterwards version 2 holds every
// event exactly once, version 1 stopped with ErrSuperseded, and the side
// effects of the events appended after version 1 started happened exactly
// once (by one version or the other), none for the history before.
func testBlueGreen[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	if e.Second == nil {
		t.Fatal("Env.Second is nil: the blue/green test needs a second read model")
	}
	ctx := context.Background()
	const history, later = 200, 300
	appendTicks(t, events, history)
	v1 := projection.NewProjector("tally", events, e.Checkpoints, e.ReadModel, projection.WithWorkers(2),
		projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	_, v1done := runInBackground(v1.Run)
	waitFor(t, func() bool { return v1.Checkpoint().Position == history })

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < later; i++ {
			if _, err := events.Append(ctx, fmt.Sprint("s-", i%7), eventsource.Any, []eventsource.Record{{Type: "Tick"}}); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Duration(rand.IntN(2)) * time.Millisecond)
		}
	}()
	rng := rand.New(rand.NewPCG(5, 6))
	newV2 := func() *projection.Projector[Tx] {
		return projection.NewProjector("tally", events, e.Checkpoints, e.Second, projection.WithVersion(2),
			projection.WithWorkers(1+rng.IntN(3)), projection.WithBatchSize(1+rng.IntN(30)),
			projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	}
	window := 30
	for round := 0; ; round++ {
		v2 := newV2()
		rctx, cancel := context.WithTimeout(ctx, time.Duration(2+rng.IntN(window))*time.Millisecond)
		err := v2.Run(rctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("round %d of version 2: %v", round, err)
		}
		if live, err := v2.LiveVersion(ctx); err != nil || live == 2 {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if round > 3000 {
			t.Fatalf("version 2 has not taken over after %d rounds", round)
		}
		if round%10 == 9 && window < 2000 {
			window *= 2
		}
	}
	select {
	case err := <-v1done:
		if !errors.Is(err, projection.ErrSuperseded) {
			t.Fatalf("version 1's Run = %v, want ErrSuperseded", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("version 1 still runs 30s after version 2 took over")
	}
	wg.Wait()
	v2 := newV2()
	if err := runUntil(v2.Run, func() bool { return v2.Checkpoint().Position == history+later }); !errors.Is(err, context.Canceled) {
		t.Fatalf("version 2 after the take-over: %v", err)
	}
	if n, counted := applied(t, e.Second); n != history+later || counted != history+later {
		t.Fatalf("version 2 applied %d and counted %d, want %d", n, counted, history+later)
	}
	effects, err := e.ReadModel.Effects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]uint64, 0, later)
	for p := uint64(history + 1); p <= history+later; p++ {
		want = append(want, p)
	}
	if !slices.Equal(effects, want) {
		t.Fatalf("side effects at %d positions (first %v); want exactly %d..%d once each", len(effects), effects[:min(5, len(effects))], history+1, history+later)
	}
	verifyClean(t, events, e.Checkpoints, "tally@v2", history+later)
	if cp, _ := e.Checkpoints.Load(ctx, "tally"); cp.Status != projection.StatusSuperseded || cp.Live != 2 {
		t.Fatalf("version 1's checkpoint: status %q, live %d", cp.Status, cp.Live)
	}
	if err := v2.Drop(ctx); !errors.Is(err, projection.ErrLive) {
		t.Fatalf("dropping the live version: %v, want ErrLive", err)
	}
	if err := v1.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, exists, err := e.ReadModel.Applied(ctx); err != nil || exists {
		t.Fatalf("version 1's read model after Drop: exists %v, %v", exists, err)
	}
	if live, err := projection.LiveVersion(ctx, e.Checkpoints, "tally"); err != nil || live != 2 {
		t.Fatalf("live version after the drop: %d, %v", live, err)
	}
}

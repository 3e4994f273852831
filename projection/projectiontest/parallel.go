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

// verifyClean fails t unless Verify finds the events of the log handled
// exactly once, all of them, up to its head.
func verifyClean(t *testing.T, events eventsource.Store, cps projection.CheckpointStore, name string) {
	t.Helper()
	log := logOf(t, events)
	rep, err := projection.Verify(context.Background(), events, cps, name)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Events != uint64(len(log)) || rep.To != log[len(log)-1].Position {
		t.Fatalf("Verify of %s: %d events up to %d in %d ranges, mismatches %v; want a clean bill for %d events up to %d",
			name, rep.Events, rep.To, rep.Ranges, rep.Mismatches, len(log), log[len(log)-1].Position)
	}
}

// logOf reads the whole log.
func logOf(t *testing.T, events eventsource.Store) []eventsource.Record {
	t.Helper()
	var out []eventsource.Record
	for r, err := range events.ReadAll(context.Background(), 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// headOf is the position of the last record of the log.
func headOf(t *testing.T, events eventsource.Store) uint64 {
	t.Helper()
	log := logOf(t, events)
	if len(log) == 0 {
		return 0
	}
	return log[len(log)-1].Position
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
	head := headOf(t, events)
	waitFor(t, func() bool { return p.Checkpoint().Position == head })
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
	if err != nil || cp.Position != head || len(cp.Done) != 0 {
		t.Fatalf("checkpoint: position %d, done %v, %v", cp.Position, cp.Done, err)
	}
	t.Logf("at most %d batches applied at once", rm.concurrent)
	verifyClean(t, events, e.Checkpoints, "tally")
}

// testParallelKills kills a parallel projector at random moments while a
// writer appends, with a different number of workers in each run.
func testParallelKills[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	const total = 400
	written := make(chan struct{})
	go func() { defer close(written); appendSpread(t, events, total, 11) }()
	var head uint64 // once written
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
		if head == 0 {
			select {
			case <-written:
				head = headOf(t, events)
			default:
			}
		}
		if head != 0 && cp.Position == head && len(cp.Done) == 0 {
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
	if n, counted := applied(t, e.ReadModel); n != total || counted != total {
		t.Fatalf("read model applied %d events and counted %d, want exactly %d", n, counted, total)
	}
	verifyClean(t, events, e.Checkpoints, "tally")
}

// poisoned appends 70 events over 7 streams and returns the position of
// the 16th, the positions of its stream's events after it, and the head.
func poisoned(t *testing.T, events eventsource.Store) (poison uint64, behind []uint64, head uint64) {
	appendTicks(t, events, 70)
	log := logOf(t, events)
	if len(log) != 70 {
		t.Fatalf("log holds %d events, want 70", len(log))
	}
	for _, r := range log[16:] {
		if r.StreamID == log[15].StreamID {
			behind = append(behind, r.Position)
		}
	}
	return log[15].Position, behind, log[69].Position
}

func testParkKeepsOrder[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	ctx := context.Background()
	poison, behind, head := poisoned(t, events)
	e.ReadModel.FailAt(poison)
	rm := newOrdered(e.ReadModel)
	p := projection.NewProjector("tally", events, e.Checkpoints, rm, projection.WithWorkers(3), projection.WithBatchSize(4),
		projection.WithErrorPolicy(projection.ErrorPolicy{Retries: 1, Backoff: time.Millisecond, Park: true}),
		projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	if err := runUntil(p.Run, func() bool { return p.Checkpoint().Position == head }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want it to park and go on", err)
	}
	parked, err := p.Parked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1+len(behind) || parked[0].Position != poison || parked[0].Behind != 0 || parked[0].Error == "" || parked[0].Attempts != 2 || parked[0].At.IsZero() {
		t.Fatalf("parked: %+v; want %d with its error and 2 attempts, and the %d events of its stream behind it", parked, poison, len(behind))
	}
	for i, pos := range behind {
		if pe := parked[i+1]; pe.Position != pos || pe.Behind != poison || pe.Key != parked[0].Key {
			t.Fatalf("parked[%d] = %+v, want position %d behind %d", i+1, pe, pos, poison)
		}
	}
	if n, _ := applied(t, e.ReadModel); n != 70-1-len(behind) {
		t.Fatalf("applied %d, want the %d events of other streams and before the poison", n, 70-1-len(behind))
	}
	verifyClean(t, events, e.Checkpoints, "tally")

	// Fixed: replaying the poison replays the events behind it, in order.
	// A replay asked for while a stop is pending does not overwrite it:
	// the projector stops, and replays when it runs again.
	e.ReadModel.FailAt(0)
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.ReplayParked(ctx, poison); err != nil {
		t.Fatal(err)
	}
	if cp, _ := e.Checkpoints.Load(ctx, "tally"); cp.Request != projection.RequestStop {
		t.Fatalf("pending request after ReplayParked: %q, want the stop kept", cp.Request)
	}
	if err := p.Run(ctx); !errors.Is(err, projection.ErrStopped) {
		t.Fatalf("Run with a stop pending = %v", err)
	}
	if err := p.Start(ctx); err != nil {
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
	if err := p.ReplayParked(ctx, poison); !errors.Is(err, projection.ErrNotParked) {
		t.Fatalf("replaying an event no longer parked: %v, want ErrNotParked", err)
	}
	verifyClean(t, events, e.Checkpoints, "tally")
}

func testParkedKeyContinues[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	ctx := context.Background()
	poison, _, head := poisoned(t, events)
	e.ReadModel.FailAt(poison)
	p := projection.NewProjector("tally", events, e.Checkpoints, e.ReadModel, projection.WithWorkers(2),
		projection.WithErrorPolicy(projection.ErrorPolicy{Park: true, ParkedKeyContinues: true}),
		projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	if err := runUntil(p.Run, func() bool { return p.Checkpoint().Position == head }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	parked, _ := p.Parked(ctx)
	if len(parked) != 1 || parked[0].Position != poison || parked[0].Attempts != 1 {
		t.Fatalf("parked: %+v; want %d alone", parked, poison)
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
		t.Fatalf("after a failed replay: %+v; want the poison parked with 2 attempts", parked)
	}
	if err := p.DiscardParked(ctx, poison); err != nil {
		t.Fatal(err)
	}
	cp, _ := e.Checkpoints.Load(ctx, "tally")
	if len(cp.Parked) != 0 || !slices.Contains(cp.Skipped, poison) {
		t.Fatalf("after discard: parked %v, skipped %v", cp.Parked, cp.Skipped)
	}
	if err := p.DiscardParked(ctx, poison); !errors.Is(err, projection.ErrNotParked) {
		t.Fatalf("discarding twice: %v, want ErrNotParked", err)
	}
	verifyClean(t, events, e.Checkpoints, "tally")
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
	h1 := headOf(t, events)
	v1 := projection.NewProjector("tally", events, e.Checkpoints, e.ReadModel, projection.WithWorkers(2),
		projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	_, v1done := runInBackground(v1.Run)
	waitFor(t, func() bool { return v1.Checkpoint().Position == h1 })

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
	log := logOf(t, events)
	head := log[len(log)-1].Position
	v2 := newV2()
	if err := runUntil(v2.Run, func() bool { return v2.Checkpoint().Position == head }); !errors.Is(err, context.Canceled) {
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
	for _, r := range log[history:] {
		want = append(want, r.Position)
	}
	if !slices.Equal(effects, want) {
		t.Fatalf("side effects at %d positions (first %v); want the %d after position %d once each", len(effects), effects[:min(5, len(effects))], later, h1)
	}
	verifyClean(t, events, e.Checkpoints, "tally@v2")
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

// RunEvents runs the parallel projector's tests (order per key, exactly
// once across kills, parking, blue/green) with the events in stores from
// newEvents (fresh and empty for each subtest): the store under test's
// global log feeds projectors whose read model and checkpoints are in
// newEnv's database. Each event store's tests call it (through
// sqlcheckpointtest.RunEvents, on SQLite).
func RunEvents[Tx any](t *testing.T, newEvents func(t *testing.T) eventsource.Store, newEnv func(t *testing.T) Env[Tx]) {
	for _, tc := range parallelTests[Tx]() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newEvents(t), newEnv(t))
		})
	}
}

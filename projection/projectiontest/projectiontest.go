// Package projectiontest is the conformance suite of checkpoint stores:
// leases and their holders, checkpoints, control requests and the
// projections that steer by them (Run), and, for stores that write
// checkpoints inside a read model's transaction, exactly-once application
// across kills, reset, delete and faults (RunTx). Each checkpoint store's
// tests call it against its real database.
package projectiontest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// Run tests the projection.CheckpointStore contract on stores from newStore (fresh and
// empty for each subtest).
func Run(t *testing.T, newStore func(t *testing.T) projection.CheckpointStore) {
	t.Run("Leases", func(t *testing.T) { t.Parallel(); testLeases(t, newStore(t)) })
	t.Run("SaveAndRequests", func(t *testing.T) { t.Parallel(); testSaveAndRequests(t, newStore(t)) })
	t.Run("Holder", func(t *testing.T) { t.Parallel(); testHolder(t, newStore(t)) })
	t.Run("SkipThenStart", func(t *testing.T) { t.Parallel(); testSkipThenStart(t, newStore(t)) })
	t.Run("StatusTellsWhoRuns", func(t *testing.T) { t.Parallel(); testStatusTellsWhoRuns(t, newStore(t)) })
	t.Run("OnCaughtUp", func(t *testing.T) { t.Parallel(); testOnCaughtUp(t, newStore(t)) })
}

// Tally is the read model RunTx drives, written by each store's test for its
// transaction type: one row per applied position under a primary key (so a
// second application of an event fails), and a count per stream.
type Tally[Tx any] interface {
	projection.ReadModel[Tx]
	// Applied returns the number of rows of positions and the sum of the
	// per-stream counts; exists is false when the tables are gone.
	Applied(ctx context.Context) (positions, counted int, exists bool, err error)
	// FailAt makes Apply fail on the record at position p (0: never). It
	// may be called while a projector runs.
	FailAt(p uint64)
	// SideEffects records each position acted on in a table of effects
	// both read models of an Env share, the outside world: a position
	// acted on twice fails on its primary key.
	projection.SideEffects[Tx]
	// Effects returns the positions acted on, in order.
	Effects(ctx context.Context) ([]uint64, error)
}

// Env is one RunTx subtest's world: a fresh checkpoint store and read model
// in one database.
type Env[Tx any] struct {
	Checkpoints projection.TxCheckpointStore[Tx]
	ReadModel   Tally[Tx]
	// Second is a read model in other tables of the same database, with
	// the same table of effects: the next version of a blue/green rebuild.
	Second Tally[Tx]
}

// RunTx runs Run and the read-model tests. The events live in a SQLite store
// of the subtest's own: the exactly-once promise depends on the read model
// and the checkpoint sharing a database, not on where the events are.
func RunTx[Tx any](t *testing.T, newEnv func(t *testing.T) Env[Tx]) {
	Run(t, func(t *testing.T) projection.CheckpointStore { return newEnv(t).Checkpoints })
	tests := []struct {
		name string
		fn   func(*testing.T, eventsource.Store, Env[Tx])
	}{
		{"ExactlyOnceAcrossKills", testExactlyOnce[Tx]},
		{"ResetAndDelete", testResetAndDelete[Tx]},
		{"FaultAndSkip", testFault[Tx]},
		{"FaultSkipThenStart", testFaultSkipThenStart[Tx]},
		{"CaughtUpAndHolder", testCaughtUpAndHolder[Tx]},
		{"StaleHolderCannotCommit", testStaleHolder[Tx]},
		{"LoadTxWriteTx", testLoadTxWriteTx[Tx]},
	}
	tests = append(tests, parallelTests[Tx]()...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { events.Close() })
			tc.fn(t, events, newEnv(t))
		})
	}
}

func testLeases(t *testing.T, cps projection.CheckpointStore) {
	ctx := context.Background()
	if err := cps.Acquire(ctx, "p", "a", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := cps.Acquire(ctx, "p", "a", time.Hour); err != nil {
		t.Fatalf("renewal by the holder: %v", err)
	}
	if err := cps.Acquire(ctx, "p", "b", time.Hour); !errors.Is(err, projection.ErrLeaseHeld) {
		t.Fatalf("second owner: %v, want ErrLeaseHeld", err)
	}
	// An expired lease is taken over.
	if err := cps.Acquire(ctx, "q", "a", -time.Second); err != nil {
		t.Fatal(err)
	}
	if err := cps.Acquire(ctx, "q", "b", time.Hour); err != nil {
		t.Fatalf("taking over an expired lease: %v", err)
	}
	if _, err := cps.Save(ctx, "a", projection.Checkpoint{Name: "q", Position: 1}, projection.RequestNone); !errors.Is(err, projection.ErrLeaseLost) {
		t.Fatalf("save by the old holder: %v, want ErrLeaseLost", err)
	}
	cp, err := cps.Load(ctx, "q")
	if err != nil || cp.Owner != "b" || cp.Position != 0 {
		t.Fatalf("after takeover: %+v %v", cp, err)
	}
	if err := cps.Release(ctx, "q", "a"); err != nil {
		t.Fatal(err)
	}
	if cp, _ := cps.Load(ctx, "q"); cp.Owner != "b" {
		t.Fatalf("a release by a non-holder freed the lease: %+v", cp)
	}
	if err := cps.Release(ctx, "q", "b"); err != nil {
		t.Fatal(err)
	}
	if cp, _ := cps.Load(ctx, "q"); cp.Owner != "" {
		t.Fatalf("owner after release: %q", cp.Owner)
	}
	if err := cps.Acquire(ctx, "q", "c", time.Hour); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if cp, _ := cps.Load(ctx, "never-run"); cp.Name != "never-run" || cp.Status != projection.StatusNew || cp.Position != 0 {
		t.Fatalf("a projection never run: %+v", cp)
	}
}

// testHolder: Load's Holder names the owner of a live lease only, by the
// clock Acquire uses: Holder is empty exactly when another owner could take
// the lease.
func testHolder(t *testing.T, cps projection.CheckpointStore) {
	ctx := context.Background()
	load := func(name string) projection.Checkpoint {
		t.Helper()
		cp, err := cps.Load(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	if cp := load("p"); cp.Holder != "" {
		t.Fatalf("a projection never run has holder %q", cp.Holder)
	}
	if err := cps.Acquire(ctx, "p", "a", time.Hour); err != nil {
		t.Fatal(err)
	}
	if cp := load("p"); cp.Holder != "a" || cp.Owner != "a" {
		t.Fatalf("live lease: holder %q, owner %q; want a", cp.Holder, cp.Owner)
	}
	if err := cps.Acquire(ctx, "q", "a", -time.Second); err != nil {
		t.Fatal(err)
	}
	if cp := load("q"); cp.Holder != "" || cp.Owner != "a" {
		t.Fatalf("expired lease: holder %q, owner %q; want no holder, owner a", cp.Holder, cp.Owner)
	}
	// A lease that runs out while it is watched.
	if err := cps.Acquire(ctx, "r", "a", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return load("r").Holder == "" })
	if err := cps.Acquire(ctx, "r", "b", time.Hour); err != nil {
		t.Fatalf("no holder, yet another owner cannot take the lease: %v", err)
	}
	// Save keeps the lease's holder whatever the checkpoint says.
	if _, err := cps.Save(ctx, "a", projection.Checkpoint{Name: "p", Position: 3, Holder: "x"}, projection.RequestNone); err != nil {
		t.Fatal(err)
	}
	if cp := load("p"); cp.Holder != "a" || cp.Position != 3 {
		t.Fatalf("after Save: %+v", cp)
	}
	if err := cps.Release(ctx, "p", "a"); err != nil {
		t.Fatal(err)
	}
	if cp := load("p"); cp.Holder != "" {
		t.Fatalf("released lease: holder %q", cp.Holder)
	}
}

func testSaveAndRequests(t *testing.T, cps projection.CheckpointStore) {
	ctx := context.Background()
	if err := cps.Acquire(ctx, "p", "a", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := cps.Request(ctx, "p", projection.RequestStop); err != nil {
		t.Fatal(err)
	}
	in := projection.Checkpoint{Name: "p", Position: 9, State: []byte(`{"n":9}`), Status: projection.StatusFaulted,
		Error: "boom", FaultedAt: 10, Skipped: []uint64{3, 5}}
	req, err := cps.Save(ctx, "a", in, projection.RequestNone)
	if err != nil || req != projection.RequestStop {
		t.Fatalf("save by the holder: %v, %v; want the pending stop request", req, err)
	}
	cp, err := cps.Load(ctx, "p")
	if err != nil || cp.Position != 9 || string(cp.State) != `{"n":9}` || cp.Status != projection.StatusFaulted ||
		cp.Error != "boom" || cp.FaultedAt != 10 || fmt.Sprint(cp.Skipped) != "[3 5]" || cp.Owner != "a" || cp.Request != projection.RequestStop {
		t.Fatalf("checkpoint read back: %+v %v", cp, err)
	}
	if req, _ = cps.Save(ctx, "a", projection.Checkpoint{Name: "p", Position: 9}, projection.RequestReset); req != projection.RequestStop {
		t.Fatalf("handling another request cleared this one: %v", req)
	}
	if req, _ = cps.Save(ctx, "a", projection.Checkpoint{Name: "p", Position: 9}, projection.RequestStop); req != projection.RequestNone {
		t.Fatalf("handled request still pending: %v", req)
	}
	if err := cps.SetStatus(ctx, "p", projection.StatusRunning); err != nil {
		t.Fatal(err)
	}
	if cp, _ := cps.Load(ctx, "p"); cp.Status != projection.StatusRunning || cp.Error != "" {
		t.Fatalf("after SetStatus: %+v", cp)
	}
	if err := cps.Delete(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if cp, _ := cps.Load(ctx, "p"); cp.Position != 0 || cp.Owner != "" || cp.Status != projection.StatusNew {
		t.Fatalf("after Delete: %+v", cp)
	}
}

// poisonFold counts events and fails on every one of type "Poison".
func poisonFold(n int, r eventsource.Record) (int, error) {
	if r.Type == "Poison" {
		return n, errors.New("cannot handle poison")
	}
	return n + 1, nil
}

// testSkipThenStart faults a projection, then asks for a skip and a start
// (in both orders, as an operator might): the next Run skips the event that
// faulted it instead of faulting on it again.
func testSkipThenStart(t *testing.T, cps projection.CheckpointStore) {
	ctx := context.Background()
	events := memory.New()
	for _, typ := range []string{"Tick", "Tick", "Tick", "Poison", "Tick", "Tick"} {
		if _, err := events.Append(ctx, "s", eventsource.Any, []eventsource.Record{{Type: typ}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, order := range []string{"skip-start", "start-skip"} {
		p := projection.NewProjection(order, events, cps, 0, poisonFold, projection.WithBatchSize(2), projection.WithPolling(time.Millisecond, 10*time.Millisecond))
		var fe *projection.FaultError
		if err := p.Run(ctx); !errors.As(err, &fe) || fe.Position != 4 {
			t.Fatalf("%s: Run = %v, want a fault at position 4", order, err)
		}
		first, then := p.Skip, p.Start
		if order == "start-skip" {
			first, then = p.Start, p.Skip
		}
		if err := first(ctx); err != nil {
			t.Fatal(err)
		}
		if err := then(ctx); err != nil {
			t.Fatal(err)
		}
		if err := runUntil(p.Run, func() bool { return p.Checkpoint().Position == 6 }); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: Run after Skip and Start = %v, want it to skip position 4 and run on", order, err)
		}
		cp, err := cps.Load(ctx, order)
		if err != nil || p.State() != 5 || fmt.Sprint(cp.Skipped) != "[4]" || cp.Position != 6 ||
			cp.Status != projection.StatusRunning || cp.Error != "" || cp.Request != projection.RequestNone {
			t.Fatalf("%s: state %d, checkpoint %+v, %v; want 5 events folded and position 4 skipped", order, p.State(), cp, err)
		}
	}
}

// testStatusTellsWhoRuns: Status says both what was asked for and which
// instance runs the projection now; when Run returns the status stays
// "running" (the next Run resumes) but no instance holds it.
func testStatusTellsWhoRuns(t *testing.T, cps projection.CheckpointStore) {
	ctx := context.Background()
	events := memory.New()
	appendTicks(t, events, 5)
	newInstance := func(owner string, cps projection.CheckpointStore) *projection.Projection[int] {
		return projection.NewProjection("who", events, cps, 0, poisonFold, projection.WithOwner(owner),
			projection.WithLease(time.Hour), projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	}
	refused := make(chan struct{}, 1)
	one, two := newInstance("one", cps), newInstance("two", refusedAcquire{cps, refused})
	status := func(p *projection.Projection[int]) projection.Checkpoint {
		t.Helper()
		cp, err := p.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	if st := status(one); st.Status != projection.StatusNew || st.Holder != "" {
		t.Fatalf("before any Run: status %q, holder %q", st.Status, st.Holder)
	}
	ctx1, cancel1 := context.WithCancel(ctx)
	done1 := make(chan error, 1)
	go func() { done1 <- one.Run(ctx1) }()
	waitFor(t, func() bool { return one.Checkpoint().Position == 5 })
	if st, local := status(one), one.Checkpoint(); st.Status != projection.StatusRunning || st.Holder != "one" || local.Holder != "one" {
		t.Fatalf("while one runs: status %q, holder %q, its own checkpoint's holder %q", st.Status, st.Holder, local.Holder)
	}
	// A standby sees who runs the projection, and that it is not itself.
	ctx2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	done2 := make(chan error, 1)
	go func() { done2 <- two.Run(ctx2) }()
	select {
	case <-refused:
	case err := <-done2:
		t.Fatalf("standby's Run = %v", err)
	}
	if st, local := status(two), two.Checkpoint(); st.Holder != "one" || local.Holder != "" {
		t.Fatalf("standby two: holder %q in the store, %q in its own checkpoint", st.Holder, local.Holder)
	}
	cancel1()
	if err := <-done1; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	// two stands by for a third of the hour-long lease: nobody runs it now.
	if st, local := status(one), one.Checkpoint(); st.Status != projection.StatusRunning || st.Holder != "" || local.Holder != "" {
		t.Fatalf("after Run returned: status %q, holder %q, its own checkpoint's holder %q; want running with no holder", st.Status, st.Holder, local.Holder)
	}
	cancel2()
	if err := <-done2; !errors.Is(err, context.Canceled) {
		t.Fatalf("standby's Run = %v", err)
	}
}

// refusedAcquire signals each Acquire refused with ErrLeaseHeld.
type refusedAcquire struct {
	projection.CheckpointStore
	refused chan<- struct{}
}

func (s refusedAcquire) Acquire(ctx context.Context, name, owner string, ttl time.Duration) error {
	err := s.CheckpointStore.Acquire(ctx, name, owner, ttl)
	if errors.Is(err, projection.ErrLeaseHeld) {
		select {
		case s.refused <- struct{}{}:
		default:
		}
	}
	return err
}

// testOnCaughtUp: a projection's OnCaughtUp is called once everything
// committed is folded and checkpointed, and again after new events.
func testOnCaughtUp(t *testing.T, cps projection.CheckpointStore) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := memory.New()
	appendTicks(t, events, 25)
	saved := make(chan uint64, 10)
	p := projection.NewProjection("caught-up", events, cps, 0, poisonFold, projection.WithBatchSize(4),
		projection.OnCaughtUp(func() {
			cp, err := cps.Load(ctx, "caught-up")
			if err != nil {
				t.Error(err)
			}
			saved <- cp.Position
		}))
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	next := func() uint64 {
		t.Helper()
		select {
		case pos := <-saved:
			return pos
		case err := <-done:
			t.Fatalf("Run returned %v before catching up", err)
		case <-ctx.Done():
			t.Fatal("OnCaughtUp not called in 30s")
		}
		return 0
	}
	if pos := next(); pos != 25 || p.State() != 25 {
		t.Fatalf("caught up with checkpoint %d and %d events folded, want 25", pos, p.State())
	}
	more := make([]eventsource.Record, 5) // one append, seen all at once
	for i := range more {
		more[i].Type = "Tick"
	}
	if _, err := events.Append(ctx, "later", eventsource.NoStream, more); err != nil {
		t.Fatal(err)
	}
	if pos := next(); pos != 30 || p.State() != 30 {
		t.Fatalf("caught up again with checkpoint %d and %d events folded, want 30", pos, p.State())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

// runUntil runs run until reached reports true (or run returns), then
// cancels it and returns what it returned.
func runUntil(run func(context.Context) error, reached func() bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	for !reached() {
		select {
		case err := <-done:
			return err
		case <-time.After(2 * time.Millisecond):
		}
	}
	cancel()
	return <-done
}

func appendTicks(t testing.TB, s eventsource.Store, n int) {
	for i := 0; i < n; i++ {
		if _, err := s.Append(context.Background(), fmt.Sprint("s-", i%7), eventsource.Any, []eventsource.Record{{Type: "Tick"}}); err != nil {
			t.Error(err)
			return
		}
	}
}

func applied[Tx any](t *testing.T, rm Tally[Tx]) (int, int) {
	t.Helper()
	n, counted, exists, err := rm.Applied(context.Background())
	if err != nil || !exists {
		t.Fatalf("read model: exists %v, %v", exists, err)
	}
	return n, counted
}

// testExactlyOnce kills the projector (cancels its context) at random
// moments while a writer appends; the read model must end with each event
// applied exactly once.
func testExactlyOnce[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	const total = 300
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); appendTicks(t, events, total) }()
	rng := rand.New(rand.NewPCG(1, 2))
	// Kills land at random moments within a window of window ms. It widens
	// while rounds make no progress (a slow machine, the race detector:
	// a round must be able to reach a commit), and narrows again after.
	window, stuck, last := 30, 0, uint64(0)
	for round := 0; ; round++ {
		p := projection.NewProjector("tally", events, e.Checkpoints, e.ReadModel, projection.WithBatchSize(1+rng.IntN(20)))
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
		if cp.Position == total {
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
}

func testResetAndDelete[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	appendTicks(t, events, 50)
	p := projection.NewProjector("tally", events, e.Checkpoints, e.ReadModel, projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, func() bool { return p.Checkpoint().Position == 50 })
	if err := p.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		cp, _ := e.Checkpoints.Load(ctx, "tally")
		return cp.Request == projection.RequestNone && cp.Position == 50
	})
	if n, counted := applied(t, e.ReadModel); n != 50 || counted != 50 {
		t.Fatalf("after reset: %d applied, %d counted", n, counted)
	}
	if err := p.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, projection.ErrDeleted) {
		t.Fatalf("Run after Delete = %v", err)
	}
	if cp, _ := e.Checkpoints.Load(ctx, "tally"); cp.Status != projection.StatusNew || cp.Position != 0 {
		t.Fatalf("checkpoint after delete: %+v", cp)
	}
	if _, _, exists, err := e.ReadModel.Applied(ctx); err != nil || exists {
		t.Fatalf("read model after Delete: exists %v, %v", exists, err)
	}
}

func testFault[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	appendTicks(t, events, 20)
	e.ReadModel.FailAt(13)
	p := projection.NewProjector("tally", events, e.Checkpoints, e.ReadModel, projection.WithBatchSize(5))
	err := p.Run(context.Background())
	var fe *projection.FaultError
	if !errors.As(err, &fe) || fe.Position != 13 {
		t.Fatalf("Run = %v, want a fault at 13", err)
	}
	cp, _ := e.Checkpoints.Load(context.Background(), "tally")
	if cp.Status != projection.StatusFaulted || cp.Position != 12 || cp.FaultedAt != 13 || cp.Error == "" {
		t.Fatalf("checkpoint: %+v", cp)
	}
	if n, _ := applied(t, e.ReadModel); n != 12 {
		t.Fatalf("read model holds %d events, want the 12 before the fault", n)
	}
	if err := p.Skip(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, func() bool { return p.Checkpoint().Position == 20 })
	cancel()
	<-done
	cp, _ = e.Checkpoints.Load(context.Background(), "tally")
	if n, _ := applied(t, e.ReadModel); n != 19 || fmt.Sprint(cp.Skipped) != "[13]" {
		t.Fatalf("after skip: %d applied, skipped %v", n, cp.Skipped)
	}
}

// testFaultSkipThenStart: Skip then Start on a faulted projector skips the
// event that faulted it, with the read model untouched by it.
func testFaultSkipThenStart[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	ctx := context.Background()
	appendTicks(t, events, 20)
	e.ReadModel.FailAt(13)
	p := projection.NewProjector("tally", events, e.Checkpoints, e.ReadModel, projection.WithBatchSize(5), projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	var fe *projection.FaultError
	if err := p.Run(ctx); !errors.As(err, &fe) || fe.Position != 13 {
		t.Fatalf("Run = %v, want a fault at 13", err)
	}
	if err := p.Skip(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := runUntil(p.Run, func() bool { return p.Checkpoint().Position == 20 }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after Skip and Start = %v, want it to skip position 13 and run on", err)
	}
	cp, _ := e.Checkpoints.Load(ctx, "tally")
	if n, _ := applied(t, e.ReadModel); n != 19 || fmt.Sprint(cp.Skipped) != "[13]" || cp.Status != projection.StatusRunning || cp.Error != "" {
		t.Fatalf("after Skip and Start: %d applied, checkpoint %+v", n, cp)
	}
}

// testCaughtUpAndHolder: a projector's OnCaughtUp comes once the read model
// holds every event and the checkpoint says so, while this instance holds
// the lease; after Run returns the status still asks for running, and no
// instance holds it.
func testCaughtUpAndHolder[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	appendTicks(t, events, 30)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caughtUp := make(chan projection.Checkpoint, 10)
	p := projection.NewProjector("tally", events, e.Checkpoints, e.ReadModel, projection.WithBatchSize(7), projection.WithOwner("p1"),
		projection.OnCaughtUp(func() {
			cp, err := e.Checkpoints.Load(ctx, "tally")
			if err != nil {
				t.Error(err)
			}
			caughtUp <- cp
		}))
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var cp projection.Checkpoint
	select {
	case cp = <-caughtUp:
	case err := <-done:
		t.Fatalf("Run returned %v before catching up", err)
	}
	if n, counted := applied(t, e.ReadModel); cp.Position != 30 || n != 30 || counted != 30 {
		t.Fatalf("caught up with checkpoint %d and %d events applied, want 30", cp.Position, n)
	}
	if cp.Holder != "p1" || cp.Status != projection.StatusRunning || p.Checkpoint().Holder != "p1" {
		t.Fatalf("while running: status %q, holder %q, own checkpoint's holder %q", cp.Status, cp.Holder, p.Checkpoint().Holder)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	st, err := p.Status(context.Background())
	if err != nil || st.Status != projection.StatusRunning || st.Holder != "" || p.Checkpoint().Holder != "" {
		t.Fatalf("after Run returned: status %q, holder %q (%v), own checkpoint's holder %q; want running with no holder",
			st.Status, st.Holder, err, p.Checkpoint().Holder)
	}
}

// testStaleHolder: an instance whose lease was taken over cannot commit a
// batch, even inside its own transaction.
func testStaleHolder[Tx any](t *testing.T, events eventsource.Store, e Env[Tx]) {
	ctx := context.Background()
	if err := e.Checkpoints.Acquire(ctx, "r", "a", -time.Second); err != nil {
		t.Fatal(err)
	}
	if err := e.Checkpoints.Acquire(ctx, "r", "b", time.Hour); err != nil {
		t.Fatal(err)
	}
	err := e.Checkpoints.InTx(ctx, func(ctx context.Context, tx Tx) error {
		_, err := e.Checkpoints.SaveTx(ctx, tx, "a", projection.Checkpoint{Name: "r", Position: 1}, projection.RequestNone)
		return err
	})
	if !errors.Is(err, projection.ErrLeaseLost) {
		t.Fatalf("stale holder's SaveTx: %v, want ErrLeaseLost", err)
	}
	if cp, _ := e.Checkpoints.Load(ctx, "r"); cp.Position != 0 || cp.Owner != "b" {
		t.Fatalf("after the stale save: %+v", cp)
	}
}

// testLoadTxWriteTx: LoadTx reads a checkpoint inside a transaction,
// creating its row when there is none, and locks the row until the
// transaction ends; WriteTx writes everything Save writes, the request and
// the progress (MarshalProgress), and leaves the owner and lease alone;
// Save and SaveTx keep the progress too.
func testLoadTxWriteTx[Tx any](t *testing.T, _ eventsource.Store, e Env[Tx]) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cps := e.Checkpoints
	loadTx := func(name string) projection.Checkpoint {
		t.Helper()
		var cp projection.Checkpoint
		if err := cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
			var err error
			cp, err = cps.LoadTx(ctx, tx, name)
			return err
		}); err != nil {
			t.Fatalf("LoadTx %q: %v", name, err)
		}
		return cp
	}
	load := func(name string) projection.Checkpoint {
		t.Helper()
		cp, err := cps.Load(ctx, name)
		if err != nil {
			t.Fatalf("Load %q: %v", name, err)
		}
		return cp
	}
	// progress is what MarshalProgress encodes (a nil Filter is the zero
	// one, which selects everything).
	type progress struct {
		Done                     []projection.Range
		Digests                  []projection.Digest
		DigestsFrom, DigestRange uint64
		Filter                   eventsource.Filter
		Parked                   []projection.ParkedEvent
		Live, Version            int
		Horizon                  uint64
		HorizonDone              []projection.Range
	}
	progressOf := func(cp projection.Checkpoint) progress {
		var f eventsource.Filter
		if cp.Filter != nil {
			f = *cp.Filter
		}
		return progress{cp.Done, cp.Digests, cp.DigestsFrom, cp.DigestRange, f, cp.Parked, cp.Live, cp.Version, cp.Horizon, cp.HorizonDone}
	}
	withProgress := func(cp projection.Checkpoint, p progress) projection.Checkpoint {
		cp.Done, cp.Digests, cp.DigestsFrom, cp.DigestRange, cp.Filter = p.Done, p.Digests, p.DigestsFrom, p.DigestRange, &p.Filter
		cp.Parked, cp.Live, cp.Version, cp.Horizon, cp.HorizonDone = p.Parked, p.Live, p.Version, p.Horizon, p.HorizonDone
		return cp
	}
	// check compares what Save writes, the request and the progress.
	check := func(what string, got, want projection.Checkpoint) {
		t.Helper()
		if got.Name != want.Name || got.Position != want.Position || string(got.State) != string(want.State) || got.Status != want.Status ||
			got.Error != want.Error || got.FaultedAt != want.FaultedAt || fmt.Sprint(got.Skipped) != fmt.Sprint(want.Skipped) || got.Request != want.Request {
			t.Fatalf("%s: %+v\nwant %+v", what, got, want)
		}
		if g, w := progressOf(got), progressOf(want); !reflect.DeepEqual(g, w) {
			t.Fatalf("%s: progress %+v\nwant %+v", what, g, w)
		}
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	full := progress{
		Done:        []projection.Range{{From: 43, To: 45}, {From: 48, To: 48}},
		Digests:     []projection.Digest{{From: 1, To: 100, Count: 40, Sum: 0xfedcba9876543210}, {From: 101, To: 200, Count: 1, Sum: 7}},
		DigestsFrom: 1, DigestRange: 100,
		Filter: eventsource.Filter{Streams: []string{"order-1"}, StreamPrefixes: []string{"order-", "user-"},
			Types: []string{"Placed", "Paid"}, Metadata: map[string]string{"tenant": "t1"}},
		Parked: []projection.ParkedEvent{
			{Position: 12, Stream: "order-1", Type: "Placed", Key: "order-1", Error: "handler failed", Attempts: 3, At: at},
			{Position: 14, Stream: "order-1", Type: "Paid", Key: "order-1", At: at.Add(time.Second), Behind: 12, Replay: true},
		},
		Live: 2, Version: 3, Horizon: 30, HorizonDone: []projection.Range{{From: 33, To: 35}},
	}

	// A projection never run: a zero checkpoint, and a row WriteTx writes.
	fresh := withProgress(projection.Checkpoint{Name: "fresh", Position: 5, Status: projection.StatusStopped, Request: projection.RequestReplay}, full)
	if err := cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		cp, err := cps.LoadTx(ctx, tx, "fresh")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(cp, projection.Checkpoint{Name: "fresh"}) {
			return fmt.Errorf("LoadTx of a projection never run: %+v, want a zero checkpoint named fresh", cp)
		}
		return cps.WriteTx(ctx, tx, fresh)
	}); err != nil {
		t.Fatal(err)
	}
	check("WriteTx after LoadTx created the row", load("fresh"), fresh)

	// WriteTx on a leased row: every field but the lease, whoever holds it.
	if err := cps.Acquire(ctx, "p", "a", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := cps.Request(ctx, "p", projection.RequestStop); err != nil {
		t.Fatal(err)
	}
	leased := load("p")
	want := withProgress(projection.Checkpoint{Name: "p", Position: 41, State: []byte(`{"n":41}`), Status: projection.StatusFaulted,
		Error: "boom", FaultedAt: 42, Skipped: []uint64{7, 9}, Request: projection.RequestReplay,
		Owner: "intruder", LeaseUntil: time.Now().Add(-time.Hour), Holder: "intruder"}, full)
	if err := cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		cur, err := cps.LoadTx(ctx, tx, "p")
		if err != nil {
			return err
		}
		if cur.Owner != "a" || cur.Holder != "a" || cur.Request != projection.RequestStop {
			return fmt.Errorf("LoadTx of a leased row: %+v, want owner and holder a, the stop request", cur)
		}
		return cps.WriteTx(ctx, tx, want)
	}); err != nil {
		t.Fatal(err)
	}
	for _, got := range []projection.Checkpoint{load("p"), loadTx("p")} {
		check("after WriteTx", got, want)
		if got.Owner != "a" || got.Holder != "a" || !got.LeaseUntil.Equal(leased.LeaseUntil) {
			t.Fatalf("WriteTx changed the lease: owner %q, holder %q, until %v; want a, a, %v", got.Owner, got.Holder, got.LeaseUntil, leased.LeaseUntil)
		}
	}
	if err := cps.Acquire(ctx, "p", "b", time.Hour); !errors.Is(err, projection.ErrLeaseHeld) {
		t.Fatalf("another owner after WriteTx: %v, want ErrLeaseHeld", err)
	}

	// SaveTx and Save keep progress too; SaveTx clears the handled request.
	saved := want
	saved.Position, saved.Parked, saved.Done, saved.Version = 46, saved.Parked[1:], nil, 4
	if err := cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		req, err := cps.SaveTx(ctx, tx, "a", saved, projection.RequestReplay)
		if err == nil && req != projection.RequestNone {
			err = fmt.Errorf("SaveTx returned the handled request %q", req)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	saved.Request = projection.RequestNone
	check("after SaveTx", load("p"), saved)
	saved.Position, saved.Filter, saved.Digests = 50, &eventsource.Filter{Types: []string{"Paid"}}, saved.Digests[:1]
	if _, err := cps.Save(ctx, "a", saved, projection.RequestNone); err != nil {
		t.Fatal(err)
	}
	check("after Save", loadTx("p"), saved)
	cleared := projection.Checkpoint{Name: "p", Position: 51}
	if _, err := cps.Save(ctx, "a", cleared, projection.RequestNone); err != nil {
		t.Fatal(err)
	}
	check("after a Save without progress", load("p"), cleared)

	// LoadTx locks the row, an existing one or one it creates: another
	// transaction's LoadTx waits until the first commits, then reads its
	// write. (On SQLite the second transaction's begin is what waits.)
	for _, name := range []string{"p", "locked-new"} {
		type result struct {
			cp  projection.Checkpoint
			err error
		}
		second := make(chan result, 1)
		written := projection.Checkpoint{Name: name, Position: 77, Status: projection.StatusStopped, Done: []projection.Range{{From: 79, To: 80}}}
		err := cps.InTx(ctx, func(txCtx context.Context, tx Tx) error {
			if _, err := cps.LoadTx(txCtx, tx, name); err != nil {
				return err
			}
			go func() { // in a transaction of its own, under the test's ctx
				var r result
				r.err = cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
					var err error
					r.cp, err = cps.LoadTx(ctx, tx, name)
					return err
				})
				second <- r
			}()
			select {
			case r := <-second:
				return fmt.Errorf("a second LoadTx returned while the first transaction held the row: %+v, %v", r.cp, r.err)
			case <-time.After(200 * time.Millisecond):
			}
			return cps.WriteTx(txCtx, tx, written)
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := <-second
		if r.err != nil {
			t.Fatalf("%s: second LoadTx: %v", name, r.err)
		}
		check(name+": second LoadTx after the first committed", r.cp, written)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

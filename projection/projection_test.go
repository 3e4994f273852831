package projection_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	"github.com/eventsource-go/eventsource/store/memory"
)

func appendN(t testing.TB, s eventsource.Store, stream string, n int, typ string, md map[string]string) {
	t.Helper()
	for i := 0; i < n; i++ {
		r := eventsource.Record{Type: typ, Data: []byte(fmt.Sprintf(`{"n":%d}`, i)), Metadata: md}
		if _, err := s.Append(context.Background(), stream, eventsource.Any, []eventsource.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSubscriptionCatchUpThenLive(t *testing.T) {
	for _, live := range []bool{true, false} {
		t.Run(fmt.Sprintf("notifier=%v", live), func(t *testing.T) {
			mem := memory.New()
			var store eventsource.Store = mem
			if !live {
				store = plainStore{mem} // no Notifier: the subscription polls
			}
			appendN(t, store, "a-1", 50, "Old", nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			caughtUp := make(chan struct{}, 10)
			sub := projection.NewSubscription(store, projection.OnCaughtUp(func() { caughtUp <- struct{}{} }), projection.WithPolling(time.Millisecond, 20*time.Millisecond))
			var got []eventsource.Record
			done := make(chan error, 1)
			go func() {
				done <- sub.Run(ctx, func(_ context.Context, r eventsource.Record) error {
					got = append(got, r)
					if len(got) == 150 {
						cancel()
					}
					return nil
				})
			}()
			<-caughtUp
			var wg sync.WaitGroup
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() { defer wg.Done(); appendN(t, store, fmt.Sprintf("b-%d", w), 25, "New", nil) }()
			}
			wg.Wait()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v", err)
			}
			if len(got) != 150 {
				t.Fatalf("delivered %d records, want 150", len(got))
			}
			for i := 1; i < len(got); i++ {
				if got[i].Position <= got[i-1].Position {
					t.Fatalf("position %d after %d", got[i].Position, got[i-1].Position)
				}
			}
			if sub.Position() != got[149].Position {
				t.Fatalf("Position() = %d, want %d", sub.Position(), got[149].Position)
			}
			if n, _, err := sub.Lag(context.Background(), 0); err != nil || n != 0 {
				t.Fatalf("Lag = %d, %v", n, err)
			}
			appendN(t, store, "c-1", 3, "Later", nil)
			if n, age, err := sub.Lag(context.Background(), 0); err != nil || n != 3 || age <= 0 {
				t.Fatalf("Lag after 3 more = %d, %v, %v", n, age, err)
			}
		})
	}
}

// plainStore hides the memory store's optional interfaces.
type plainStore struct{ s *memory.Store }

func (p plainStore) Append(ctx context.Context, stream string, ev eventsource.ExpectedVersion, recs []eventsource.Record) (eventsource.AppendResult, error) {
	return p.s.Append(ctx, stream, ev, recs)
}
func (p plainStore) ReadStream(ctx context.Context, stream string, from, to int64) iter.Seq2[eventsource.Record, error] {
	return p.s.ReadStream(ctx, stream, from, to)
}
func (p plainStore) ReadAll(ctx context.Context, from uint64, f eventsource.Filter) iter.Seq2[eventsource.Record, error] {
	return p.s.ReadAll(ctx, from, f)
}

func TestConditions(t *testing.T) {
	store := memory.New()
	for i := 1; i <= 10; i++ {
		md := map[string]string{"amount": fmt.Sprint(i * 100), "tenant": []string{"a", "b"}[i%2]}
		if i == 7 {
			md["vip"] = "yes"
		}
		appendN(t, store, fmt.Sprintf("acc-%d", i%3), 1, []string{"Deposited", "Withdrawn"}[i%2], md)
	}
	cases := []struct {
		name string
		cond projection.Condition
		want int
	}{
		{"meta gt number", projection.Meta("amount").Gt(500), 5},
		{"meta ge string number", projection.Meta("amount").Ge("500"), 6},
		{"meta lt", projection.Meta("amount").Lt(300), 2},
		{"meta le", projection.Meta("amount").Le(300), 3},
		{"meta eq", projection.Meta("tenant").Eq("a"), 5},
		{"meta ne", projection.Meta("tenant").Ne("a"), 5},
		{"meta ne missing key", projection.Meta("vip").Ne("yes"), 9},
		{"meta in", projection.Meta("amount").In("100", "200", 1000), 3},
		{"meta exists", projection.Meta("vip").Exists(), 1},
		{"type", projection.Type().Eq("Deposited"), 5},
		{"stream in", projection.Stream().In("acc-0", "acc-1"), 7},
		{"version", projection.Version().Ge(3), 4},
		{"recorded before now", projection.RecordedAt().Le(time.Now()), 10},
		{"recorded after now", projection.RecordedAt().Gt(time.Now()), 0},
	}
	for _, c := range cases {
		n, err := projection.NewQuery(projection.FromAll(store, eventsource.Filter{}), 0).
			Where(c.cond).
			OnAny(func(n int, _ eventsource.Record) (int, error) { return n + 1, nil }).
			Run(context.Background())
		if err != nil || n != c.want {
			t.Errorf("%s: %d records (%v), want %d", c.name, n, err, c.want)
		}
	}
}

type Deposited struct {
	eventsource.Model
	Amount int
}

func TestQuery(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	reg := eventsource.NewRegistry(nil)
	if err := reg.Bind(&Deposited{}); err != nil {
		t.Fatal(err)
	}
	// Interleave two streams; the query must see them in commit order.
	for i := 1; i <= 6; i++ {
		stream := []string{"acc-x", "acc-y"}[i%2]
		rec, _ := reg.MarshalEvent(&Deposited{Amount: i})
		if _, err := store.Append(ctx, stream, eventsource.Any, []eventsource.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	appendN(t, store, "other", 3, "Deposited", nil)
	order, err := projection.NewQuery(projection.FromStreams(store, "acc-x", "acc-y"), "").
		On("Deposited", func(s string, r eventsource.Record) (string, error) { return s + r.StreamID[4:], nil }).
		Run(ctx)
	if err != nil || order != "yxyxyx" {
		t.Fatalf("merged order %q (%v), want yxyxyx", order, err)
	}
	sum, err := projection.NewQuery(projection.FromCategory(store, "acc-"), 0).
		OnEvent(reg, func(s int, e eventsource.Event) (int, error) { return s + e.(*Deposited).Amount, nil }).
		Run(ctx)
	if err != nil || sum != 21 {
		t.Fatalf("sum %d (%v), want 21", sum, err)
	}
	n, err := projection.NewQuery(projection.FromStream(store, "acc-x"), 0).
		OnAny(func(n int, _ eventsource.Record) (int, error) { return n + 1, nil }).Run(ctx)
	if err != nil || n != 3 {
		t.Fatalf("one stream: %d (%v)", n, err)
	}
	boom := errors.New("boom")
	_, err = projection.NewQuery(projection.FromAll(store, eventsource.Filter{}), 0).
		OnAny(func(int, eventsource.Record) (int, error) { return 0, boom }).Run(ctx)
	if !errors.Is(err, boom) {
		t.Fatalf("handler error: %v", err)
	}
}

// counts is a projection state: events per type.
type counts map[string]int

func countFold(s counts, r eventsource.Record) (counts, error) {
	if s == nil {
		s = counts{}
	}
	s[r.Type]++
	return s, nil
}

// runFor runs p until it has reached position want, then stops it.
func runUntil(t *testing.T, run func(context.Context) error, reached func() bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	for !reached() {
		select {
		case err := <-done:
			return err
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	return <-done
}

func TestProjectionSurvivesKills(t *testing.T) {
	events := memory.New()
	cps := projection.NewMemoryCheckpointStore()
	const total = 600
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); appendN(t, events, "s", total, "Tick", nil) }()
	// Kill the projection again and again at random points; each restart
	// resumes from the saved state and checkpoint.
	var p *projection.Projection[counts]
	for round := 0; ; round++ {
		p = projection.NewProjection("ticks", events, cps, counts{}, countFold, projection.WithBatchSize(7), projection.WithLease(time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+round%5)*time.Millisecond)
		err := p.Run(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("round %d: Run = %v", round, err)
		}
		cp, _ := cps.Load(context.Background(), "ticks")
		if cp.Position == total {
			break
		}
		if round > 5000 {
			t.Fatalf("no progress: checkpoint %d", cp.Position)
		}
	}
	wg.Wait()
	cp, _ := cps.Load(context.Background(), "ticks")
	p = projection.NewProjection("ticks", events, cps, counts{}, countFold)
	err := runUntil(t, p.Run, func() bool { return p.Checkpoint().Position >= total })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("final run: %v", err)
	}
	if got := p.State()["Tick"]; got != total || cp.Owner != "" {
		t.Fatalf("state counts %d events (owner %q), want exactly %d", got, cp.Owner, total)
	}
}

func TestLeaseOneInstanceAtATime(t *testing.T) {
	events := memory.New()
	cps := projection.NewMemoryCheckpointStore()
	appendN(t, events, "s", 100, "Tick", nil)
	var mu sync.Mutex
	active := map[string]int{}
	fold := func(owner string) func(counts, eventsource.Record) (counts, error) {
		return func(s counts, r eventsource.Record) (counts, error) {
			mu.Lock()
			active[owner]++
			mu.Unlock()
			return countFold(s, r)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := projection.NewProjection("p", events, cps, counts{}, fold("a"), projection.WithOwner("a"), projection.WithLease(200*time.Millisecond))
	b := projection.NewProjection("p", events, cps, counts{}, fold("b"), projection.WithOwner("b"), projection.WithLease(200*time.Millisecond))
	actx, killA := context.WithCancel(ctx)
	aDone := make(chan error, 1)
	go func() { aDone <- a.Run(actx) }()
	waitFor(t, func() bool { return a.Checkpoint().Position == 100 })
	bDone := make(chan error, 1)
	go func() { bDone <- b.Run(ctx) }()
	time.Sleep(300 * time.Millisecond) // longer than a lease: a renews, b stands by
	appendN(t, events, "s", 10, "Tick", nil)
	waitFor(t, func() bool { return a.Checkpoint().Position == 110 })
	mu.Lock()
	if active["b"] != 0 {
		t.Fatalf("standby b processed %d events while a held the lease", active["b"])
	}
	mu.Unlock()
	// a dies without releasing (its context ends, its lease runs out); b takes over.
	killA()
	<-aDone
	appendN(t, events, "s", 10, "Tick", nil)
	waitFor(t, func() bool { return b.Checkpoint().Position == 120 })
	cancel()
	<-bDone
	if got := b.State()["Tick"]; got != 120 {
		t.Fatalf("b's state counts %d, want 120", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestResetStopStart(t *testing.T) {
	events := memory.New()
	cps := projection.NewMemoryCheckpointStore()
	appendN(t, events, "s", 30, "Tick", nil)
	p := projection.NewProjection("p", events, cps, counts{}, countFold, projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, func() bool { return p.Checkpoint().Position == 30 })
	before := p.State()["Tick"]
	if err := p.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		cp, _ := cps.Load(ctx, "p")
		return cp.Request == projection.RequestNone && cp.Position == 30
	})
	if after := p.State()["Tick"]; after != before || after != 30 {
		t.Fatalf("after reset the state counts %d, before %d", after, before)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, projection.ErrStopped) {
		t.Fatalf("Run after Stop = %v", err)
	}
	if cp, _ := cps.Load(ctx, "p"); cp.Status != projection.StatusStopped || cp.Owner != "" {
		t.Fatalf("after stop: %+v", cp)
	}
	if err := p.Run(ctx); !errors.Is(err, projection.ErrStopped) {
		t.Fatalf("Run of a stopped projection = %v", err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, events, "s", 5, "Tick", nil)
	if err := runUntil(t, p.Run, func() bool { return p.Checkpoint().Position == 35 }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after Start = %v", err)
	}
	if p.State()["Tick"] != 35 {
		t.Fatalf("state %d, want 35", p.State()["Tick"])
	}
}

func TestFaultAndSkip(t *testing.T) {
	events := memory.New()
	cps := projection.NewMemoryCheckpointStore()
	appendN(t, events, "s", 10, "Tick", nil)
	appendN(t, events, "s", 1, "Poison", nil)
	appendN(t, events, "s", 5, "Tick", nil)
	boom := errors.New("cannot handle poison")
	fold := func(s counts, r eventsource.Record) (counts, error) {
		if r.Type == "Poison" {
			return s, boom
		}
		return countFold(s, r)
	}
	ctx := context.Background()
	p := projection.NewProjection("p", events, cps, counts{}, fold, projection.WithBatchSize(4),
		projection.WithErrorPolicy(projection.ErrorPolicy{Retries: 2, Backoff: time.Millisecond}))
	err := p.Run(ctx)
	var fe *projection.FaultError
	if !errors.As(err, &fe) || fe.Position != 11 || !errors.Is(err, boom) || !errors.Is(err, projection.ErrFaulted) {
		t.Fatalf("Run = %v, want a fault at position 11", err)
	}
	cp, _ := cps.Load(ctx, "p")
	if cp.Status != projection.StatusFaulted || cp.FaultedAt != 11 || cp.Position != 10 || cp.Error == "" {
		t.Fatalf("faulted checkpoint: %+v", cp)
	}
	if p.State()["Tick"] != 10 {
		t.Fatalf("state %d before the poison event, want 10", p.State()["Tick"])
	}
	// Restarting without a fix faults again; skipping moves past it.
	if err := p.Run(ctx); !errors.As(err, &fe) {
		t.Fatalf("rerun: %v", err)
	}
	if err := p.Skip(ctx); err != nil {
		t.Fatal(err)
	}
	if err := runUntil(t, p.Run, func() bool { return p.Checkpoint().Position == 16 }); !errors.Is(err, context.Canceled) {
		t.Fatalf("after skip: %v", err)
	}
	cp, _ = cps.Load(ctx, "p")
	if p.State()["Tick"] != 15 || len(cp.Skipped) != 1 || cp.Skipped[0] != 11 || cp.Status != projection.StatusRunning {
		t.Fatalf("after skip: state %v, checkpoint %+v", p.State(), cp)
	}
	// With Skip in the policy the poison event is skipped by itself.
	q := projection.NewProjection("q", events, cps, counts{}, fold, projection.WithErrorPolicy(projection.ErrorPolicy{Skip: true}))
	if err := runUntil(t, q.Run, func() bool { return q.Checkpoint().Position == 16 }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if cp := q.Checkpoint(); q.State()["Tick"] != 15 || len(cp.Skipped) != 1 {
		t.Fatalf("auto-skip: %v %+v", q.State(), cp)
	}
}

func TestMemoryStoreConformance(t *testing.T) {
	projectiontest.Run(t, func(*testing.T) projection.CheckpointStore { return projection.NewMemoryCheckpointStore() })
}

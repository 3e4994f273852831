package storetest

// Ordering: a reader of the global log never misses an event, even when commits finish out of order.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// testNoMissedEvents is the classic trap of SQL event stores: positions are
// taken in one order and committed in another. Writers append concurrently,
// some commits held open at random, while a reader polls the global log from
// the last position it saw. It must end with every event exactly once, in
// position order.
func testNoMissedEvents(t *testing.T, f Features, s eventsource.Store) {
	ctx := ctxFor(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	written := map[string]bool{}
	errs := make(chan error, f.Writers)
	for w := 0; w < f.Writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < f.AppendsPerWriter; i++ {
				actx := ctx
				if f.CommitHook && rng.IntN(3) == 0 {
					d := time.Duration(rng.IntN(30)) * time.Millisecond
					actx = storekit.WithBeforeCommit(ctx, func(context.Context) { time.Sleep(d) })
				}
				typ := "Concurrent"
				if f.SlowType != "" && rng.IntN(3) == 0 {
					typ = f.SlowType
				}
				batch := recs(1+rng.IntN(3), typ)
				for j := range batch {
					batch[j].EventID = fmt.Sprintf("w%d-a%d-e%d", w, i, j)
				}
				stream := fmt.Sprintf("conc-%d", rng.IntN(20))
				if _, err := s.Append(actx, stream, eventsource.Any, batch); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, r := range batch {
					written[r.EventID] = true
				}
				mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	seen := map[string]uint64{}
	var last uint64
	poll := func() {
		for r, err := range s.ReadAll(ctx, last+1, eventsource.Filter{}) {
			if err != nil {
				t.Fatalf("ReadAll(%d): %v", last+1, err)
			}
			if r.Position <= last {
				t.Fatalf("position %d after %d", r.Position, last)
			}
			if p, dup := seen[r.EventID]; dup {
				t.Fatalf("event %s delivered twice, at %d and %d", r.EventID, p, r.Position)
			}
			seen[r.EventID] = r.Position
			last = r.Position
		}
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
			time.Sleep(time.Millisecond)
		}
		poll()
	}
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	poll()
	missed := 0
	for id := range written {
		if _, ok := seen[id]; !ok {
			missed++
		}
	}
	if missed > 0 || len(seen) != len(written) {
		t.Fatalf("reader saw %d events, writers committed %d, %d never seen", len(seen), len(written), missed)
	}
	// The reader's view is the log's: a fresh full read agrees.
	if all := readAll(t, s, 0, eventsource.Filter{}); len(all) != len(written) {
		t.Fatalf("full read: %d records, want %d", len(all), len(written))
	}
}

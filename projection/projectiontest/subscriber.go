package projectiontest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/storekit"
)

// SubscriptionOptions size LiveSubscriber's writers (8 writers of 20
// appends when 0) and say how commits can be held open at random: the
// store calls storekit.BeforeCommit, or its test setup makes appends of
// SlowType slow to commit (as storetest.Features says).
type SubscriptionOptions struct {
	Writers, AppendsPerWriter int
	CommitHook                bool
	SlowType                  string
}

// LiveSubscriber runs a catch-up subscription (the read side's building
// block) on a store while writers append, with commits held open at random
// when the store has the commit hook: it must receive every event exactly
// once, in position order, switching from history to live delivery without
// a gap. Each store's tests run it on their real server.
func LiveSubscriber(t *testing.T, s eventsource.Store, o SubscriptionOptions) {
	t.Helper()
	if o.Writers <= 0 {
		o.Writers = 8
	}
	if o.AppendsPerWriter <= 0 {
		o.AppendsPerWriter = 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	history := make([]eventsource.Record, 25)
	for i := range history {
		history[i] = eventsource.Record{Type: "History", Codec: "json", Data: []byte(`{}`)}
	}
	if _, err := s.Append(ctx, "live-0", eventsource.NoStream, history); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	var last uint64
	var failure error
	got := make(chan struct{}, 1)
	sub := projection.NewSubscription(s, projection.WithPolling(time.Millisecond, 50*time.Millisecond))
	done := make(chan error, 1)
	go func() {
		done <- sub.Run(ctx, func(_ context.Context, r eventsource.Record) error {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Position <= last:
				failure = fmt.Errorf("position %d after %d", r.Position, last)
			case seen[r.EventID]:
				failure = fmt.Errorf("event %s delivered twice", r.EventID)
			}
			seen[r.EventID], last = true, r.Position
			select {
			case got <- struct{}{}:
			default:
			}
			return failure
		})
	}()
	var wg sync.WaitGroup
	for w := 0; w < o.Writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for i := 0; i < o.AppendsPerWriter; i++ {
				actx := ctx
				if o.CommitHook && rng.IntN(3) == 0 {
					d := time.Duration(rng.IntN(20)) * time.Millisecond
					actx = storekit.WithBeforeCommit(ctx, func(context.Context) { time.Sleep(d) })
				}
				typ := "Live"
				if o.SlowType != "" && rng.IntN(3) == 0 {
					typ = o.SlowType
				}
				recs := make([]eventsource.Record, 1+rng.IntN(2))
				for j := range recs {
					recs[j] = eventsource.Record{Type: typ, Codec: "json", Data: []byte(`{}`)}
				}
				if _, err := s.Append(actx, fmt.Sprintf("live-%d", 1+rng.IntN(10)), eventsource.Any, recs); err != nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := 0
	for _, err := range s.ReadAll(ctx, 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		want++
	}
	for {
		mu.Lock()
		n, bad := len(seen), failure
		mu.Unlock()
		if bad != nil || n >= want {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("subscription ended: %v", err)
		case <-got:
		case <-time.After(30 * time.Second):
			t.Fatalf("subscriber has %d of %d events after 30s without news", n, want)
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if failure != nil {
		t.Fatal(failure)
	}
	if len(seen) != want {
		t.Fatalf("subscriber received %d events, the log holds %d", len(seen), want)
	}
}

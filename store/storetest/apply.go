package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
)

// counted is the event of the contention test's aggregate.
type counted struct {
	eventsource.Model
	By int
}

// counter is an aggregate that counts commands; it checks that it sees its
// versions in order.
type counter struct {
	n, version int64
}

func (c *counter) On(e eventsource.Event) error {
	if e.EventVersion() != c.version+1 {
		return fmt.Errorf("event version %d after %d", e.EventVersion(), c.version)
	}
	c.n++
	c.version = e.EventVersion()
	return nil
}

type count struct {
	eventsource.CommandModel
	By int
}

func (c *counter) Apply(_ context.Context, cmd eventsource.Command) ([]eventsource.Event, error) {
	return []eventsource.Event{&counted{By: cmd.(*count).By}}, nil
}

// testApplyUnderContention: 16 goroutines each run 25 commands on one
// aggregate through a repository with the default retry policy. Every
// command must succeed, exactly once.
func testApplyUnderContention(t *testing.T, _ Features, s eventsource.Store) {
	const writers, each = 16, 25
	ctx := ctxFor(t)
	repo := eventsource.New(&counter{}, eventsource.WithStore(s), eventsource.WithStreamPrefix("contended-"))
	if err := repo.Bind(&counted{}); err != nil {
		t.Fatal(err)
	}
	var failed, slowest atomic.Int64
	var first atomic.Pointer[error] // the first failure (errors of different types: no atomic.Value)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				start := time.Now()
				_, err := repo.Apply(ctx, &count{CommandModel: eventsource.CommandModel{ID: "1"}, By: w})
				for d := int64(time.Since(start)); ; {
					if old := slowest.Load(); d <= old || slowest.CompareAndSwap(old, d) {
						break
					}
				}
				if err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("slowest Apply: %v", time.Duration(slowest.Load()))
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d Apply calls failed with the default retry policy; first: %v", n, writers*each, *first.Load())
	}
	c, err := repo.Load(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if c.n != writers*each || c.version != writers*each {
		t.Fatalf("after %d commands the aggregate counted %d at version %d", writers*each, c.n, c.version)
	}
}

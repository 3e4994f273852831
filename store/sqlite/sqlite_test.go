package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	"github.com/eventsource-go/eventsource/store/sqlite"
	"github.com/eventsource-go/eventsource/store/storetest"
)

func newStore(t *testing.T, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Features{
		Notify: true, Head: true, ListStreams: true, DeleteStream: true, CommitHook: true, Reservations: true,
		Snapshots: true, Lifecycle: true, Scavenge: true,
	}, func(t *testing.T) eventsource.Store {
		return newStore(t, sqlite.WithBatchSize(100))
	})
	t.Run("LiveSubscriber", func(t *testing.T) {
		t.Parallel()
		projectiontest.LiveSubscriber(t, newStore(t), projectiontest.SubscriptionOptions{CommitHook: true})
	})
}

// TestLimits: the default limits cover the portable ones, and
// WithMaxDataSize sets the data limit (the conformance suite tests the
// defaults).
func TestLimits(t *testing.T) {
	if l, p := newStore(t).Limits(), eventsource.PortableLimits(); !l.Covers(p) {
		t.Fatalf("default limits %+v do not cover the portable %+v", l, p)
	}
	s := newStore(t, sqlite.WithMaxDataSize(100))
	if n := s.Limits().MaxDataBytes; n != 100 {
		t.Fatalf("WithMaxDataSize(100): MaxDataBytes %d", n)
	}
	if _, err := s.Append(context.Background(), "s", eventsource.Any, []eventsource.Record{{Type: "T", Data: make([]byte, 101)}}); !errors.Is(err, eventsource.ErrTooLarge) {
		t.Fatalf("101 bytes of data: %v, want ErrTooLarge", err)
	}
}

func TestTwoStoresShareAFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	db, err := sql.Open("sqlite", sqlite.DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stores []*sqlite.Store
	for _, p := range []string{"app1_", "app2_"} {
		s, err := sqlite.New(db, sqlite.WithTablePrefix(p))
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	// Concurrent first use migrates each prefix once.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		for _, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Append(ctx, "s-1", eventsource.Any, []eventsource.Record{{Type: "T"}}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	for _, s := range stores {
		h, err := eventsource.ReadStreamAll(ctx, s, "s-1")
		if err != nil || len(h) != 4 {
			t.Fatalf("stream has %d records (%v), want 4", len(h), err)
		}
	}
	if _, err := sqlite.New(db, sqlite.WithTablePrefix("x; DROP TABLE y")); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("bad prefix: %v", err)
	}
}

func TestReopenKeepsEvents(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "reopen.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "r-1", eventsource.NoStream, []eventsource.Record{{Type: "T", Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Append(ctx, "r-1", eventsource.Any, []eventsource.Record{{Type: "T"}}); !errors.Is(err, eventsource.ErrClosed) {
		t.Fatalf("append to a closed store: %v, want ErrClosed", err)
	}
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Append(ctx, "r-1", eventsource.Exact(1), []eventsource.Record{{Type: "T"}})
	if err != nil || res.LastVersion != 2 {
		t.Fatalf("after reopen: %+v, %v", res, err)
	}
}

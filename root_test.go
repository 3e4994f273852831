package eventsource_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/memory"
)

// Wallet records its own changes through eventsource.Root.
type Wallet struct {
	eventsource.Root
	Coins int
}

type CoinsAdded struct {
	eventsource.Model
	N int
}

func (w *Wallet) On(e eventsource.Event) error {
	switch e := e.(type) {
	case *CoinsAdded:
		w.Coins += e.N
	default:
		return fmt.Errorf("unexpected %T", e)
	}
	return nil
}

func (w *Wallet) Add(n int) error {
	if n <= 0 {
		return errors.New("add at least one coin")
	}
	return w.Raise(w, &CoinsAdded{N: n})
}

func TestRootRecordsChanges(t *testing.T) {
	ctx := context.Background()
	repo := eventsource.New(&Wallet{}, eventsource.WithStore(memory.New()), eventsource.WithStreamPrefix("wallet-"))
	if err := repo.Bind(&CoinsAdded{}); err != nil {
		t.Fatal(err)
	}
	w := repo.New()
	if err := w.Raise(w, &CoinsAdded{Model: eventsource.Model{ID: "w1"}, N: 2}); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(3); err != nil {
		t.Fatal(err)
	}
	if w.Coins != 5 || w.Version() != 2 || len(w.Changes()) != 2 {
		t.Fatalf("before save: %d coins, version %d, %d changes", w.Coins, w.Version(), len(w.Changes()))
	}
	if err := repo.SaveChanges(ctx, w); err != nil {
		t.Fatal(err)
	}
	if len(w.Changes()) != 0 || w.Version() != 2 {
		t.Fatalf("after save: version %d, %d changes", w.Version(), len(w.Changes()))
	}
	if err := repo.SaveChanges(ctx, w); !errors.Is(err, eventsource.ErrNoEventsProduced) {
		t.Fatalf("saving no changes: %v", err)
	}

	// Two loaded copies change concurrently: the second save conflicts.
	a, err := repo.Load(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := repo.Load(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Version() != 2 || a.Coins != 5 {
		t.Fatalf("loaded: version %d, %d coins", a.Version(), a.Coins)
	}
	if err := a.Add(1); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(10); err != nil {
		t.Fatal(err)
	}
	if err := repo.SaveChanges(ctx, a); err != nil {
		t.Fatal(err)
	}
	var ce *eventsource.ConcurrencyError
	if err := repo.SaveChanges(ctx, b); !errors.As(err, &ce) || ce.Actual != 3 {
		t.Fatalf("stale save: %v, want a conflict at version 3", err)
	}
	if err := a.Raise(a, &ItemAdded{Name: "not a wallet event"}); err == nil || len(a.Changes()) != 0 {
		t.Fatalf("an event On refused was kept: %v", err)
	}
	final, err := repo.Load(ctx, "w1")
	if err != nil || final.Coins != 6 || final.Version() != 3 {
		t.Fatalf("final: %+v, %v", final, err)
	}
	other := eventsource.New(&Cart{}, eventsource.WithStore(memory.New()))
	if err := other.SaveChanges(ctx, &Cart{}); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("SaveChanges without Root: %v", err)
	}
}

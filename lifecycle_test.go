package eventsource_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/eventsource-go/eventsource"
)

// TestRepositoryLifecycle: a repository over a store's lifecycle — a
// truncated stream loads from what is left, a soft-deleted aggregate is
// gone and, saved again as new, continues its versions, and a tombstoned
// one fails loads and saves with ErrStreamDeleted.
func TestRepositoryLifecycle(t *testing.T) {
	ctx := context.Background()
	repo, s := newRepo(t)
	for i := 0; i < 4; i++ {
		if _, err := repo.SaveExpecting(ctx, eventsource.Any, &ItemAdded{Model: eventsource.Model{ID: "c1"}, Name: fmt.Sprint("item-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SetStreamMetadata(ctx, "c1", eventsource.NoStream, eventsource.StreamMetadata{TruncateBefore: 3}); err != nil {
		t.Fatal(err)
	}
	c, err := repo.Load(ctx, "c1")
	if err != nil || fmt.Sprint(c.Items) != "[item-2 item-3]" || c.Version != 4 {
		t.Fatalf("Load of a truncated stream = %+v, %v", c, err)
	}
	if err := s.DeleteStream(ctx, "c1", eventsource.Any); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Load(ctx, "c1"); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("Load of a soft-deleted aggregate: %v, want ErrNotFound", err)
	}
	e := &ItemAdded{Model: eventsource.Model{ID: "c1"}, Name: "fresh"}
	if err := repo.Save(ctx, e); err != nil {
		t.Fatalf("Save of a new aggregate over a soft-deleted stream: %v", err)
	}
	if e.Version != 5 {
		t.Fatalf("the saved event's version is %d, want 5 (versions continue)", e.Version)
	}
	if c, err := repo.Load(ctx, "c1"); err != nil || fmt.Sprint(c.Items) != "[fresh]" || c.Version != 5 {
		t.Fatalf("Load after the stream was written again = %+v, %v", c, err)
	}
	if err := s.TombstoneStream(ctx, "c1", eventsource.Exact(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Load(ctx, "c1"); !errors.Is(err, eventsource.ErrStreamDeleted) {
		t.Fatalf("Load of a tombstoned aggregate: %v, want ErrStreamDeleted", err)
	}
	if err := repo.Save(ctx, &ItemAdded{Model: eventsource.Model{ID: "c1"}, Name: "zombie"}); !errors.Is(err, eventsource.ErrStreamDeleted) {
		t.Fatalf("Save to a tombstoned aggregate: %v, want ErrStreamDeleted", err)
	}
}

package eventsource_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/jsoncodec"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/store/memory"
)

type renameTo struct {
	eventsource.CommandModel
	Name string
}

// snapCart is Cart with a command handler, for Apply.
type snapCart struct{ Cart }

func (c *snapCart) Apply(_ context.Context, cmd eventsource.Command) ([]eventsource.Event, error) {
	return []eventsource.Event{&Renamed{To: cmd.(*renameTo).Name}}, nil
}

// With an encrypting codec, snapshots are ciphertext under the aggregate's
// key: they load while the key exists, and a shredded aggregate cannot be
// read back from its snapshot.
func TestSnapshotsAreEncryptedWithTheAggregate(t *testing.T) {
	ctx := context.Background()
	keys := encryption.NewMemoryKeyStore()
	codec := encryption.NewCodec(jsoncodec.New(), keys)
	store := memory.New()
	var logged bytes.Buffer // the repository warns when it cannot use a snapshot
	repo := eventsource.New(&snapCart{}, eventsource.WithStore(store), eventsource.WithSerializer(eventsource.NewRegistry(codec)),
		eventsource.WithSnapshots(eventsource.SnapshotPolicy{Every: 2}), // the registry's encrypting codec by default
		eventsource.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	if err := repo.Bind(&Renamed{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"secret-name-1", "secret-name-2", "secret-name-3", "secret-name-4"} {
		if _, err := repo.Apply(ctx, &renameTo{CommandModel: eventsource.CommandModel{ID: "c1"}, Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := store.LoadSnapshot(ctx, "c1", 0)
	if err != nil || snap.Version != 4 {
		t.Fatalf("newest snapshot %+v, %v; want version 4", snap, err)
	}
	if bytes.Contains(snap.Data, []byte("secret-name")) {
		t.Fatal("the snapshot holds the plaintext")
	}
	c, err := repo.Load(ctx, "c1")
	if err != nil || c.Name != "secret-name-4" || c.Version != 4 || logged.Len() != 0 {
		t.Fatalf("Load = %+v, %v (logged %q)", c, err, logged.String())
	}
	if err := keys.Delete(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Load(ctx, "c1"); !errors.Is(err, eventsource.ErrShredded) {
		t.Fatalf("Load of a shredded aggregate with a snapshot: %v, want ErrShredded", err)
	}
	if n := repo.SnapshotFallbacks(); n != 1 {
		t.Fatalf("%d snapshot fallbacks counted, want 1 (the shredded one)", n)
	}
}

func TestWithSnapshotsNeedsASnapshotStore(t *testing.T) {
	repo := eventsource.New(&Cart{}, eventsource.WithStore(storeOnly{memory.New()}), eventsource.WithSnapshots(eventsource.SnapshotPolicy{Every: 1}))
	if _, err := repo.Load(context.Background(), "x"); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("WithSnapshots on a store without snapshots: %v", err)
	}
}

type storeOnly struct{ eventsource.Store }

// TestLoadTakesTheSnapshotSaveCouldNot: events saved with plain Save (no
// state at hand) get their snapshot at the next load, once the newest is
// Every or more events behind, and not before.
func TestLoadTakesTheSnapshotSaveCouldNot(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	repo := eventsource.New(&Cart{}, eventsource.WithStore(store), eventsource.WithSnapshots(eventsource.SnapshotPolicy{Every: 100, Schema: 1}))
	if err := repo.Bind(&ItemAdded{}); err != nil {
		t.Fatal(err)
	}
	save := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := repo.SaveExpecting(ctx, eventsource.Any, &ItemAdded{Model: eventsource.Model{ID: "c"}, Name: "x"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	newest := func() int64 {
		t.Helper()
		s, err := store.LoadSnapshot(ctx, "c", 0)
		if errors.Is(err, eventsource.ErrNotFound) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return s.Version
	}
	save(99)
	if _, err := repo.Load(ctx, "c"); err != nil || newest() != 0 {
		t.Fatalf("a load 99 events from nothing snapshotted at %d, %v", newest(), err)
	}
	save(151)
	if _, err := repo.Load(ctx, "c"); err != nil || newest() != 250 {
		t.Fatalf("a load 250 events from nothing: newest snapshot %d, %v; want 250", newest(), err)
	}
	save(99)
	if _, err := repo.LoadVersion(ctx, "c", 300); err != nil || newest() != 250 {
		t.Fatalf("LoadVersion wrote a snapshot: newest %d, %v", newest(), err)
	}
	if c, err := repo.Load(ctx, "c"); err != nil || c.Version != 349 || newest() != 250 {
		t.Fatalf("a load 99 events after the snapshot: %+v, newest %d, %v", c, newest(), err)
	}
	save(1)
	if c, err := repo.Load(ctx, "c"); err != nil || len(c.Items) != 350 || newest() != 350 {
		t.Fatalf("a load 100 events after the snapshot: %d items, newest %d, %v", len(c.Items), newest(), err)
	}
}

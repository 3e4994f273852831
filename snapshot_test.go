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

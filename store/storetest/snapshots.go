package storetest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/eventsource-go/eventsource"
)

// testSnapshots: the store's contract (testSnapshotStore) and the
// repository's loads over it (testSnapshotLoads).
func testSnapshots(t *testing.T, f Features, s eventsource.Store) {
	t.Run("Store", func(t *testing.T) { testSnapshotStore(t, s) })
	t.Run("Loads", func(t *testing.T) { testSnapshotLoads(t, s) })
}

// testSnapshotStore: a SnapshotStore keeps snapshots per stream, returns the
// newest at or below a version, replaces one at the same version, refuses
// bad ones, and forgets a deleted stream's.
func testSnapshotStore(t *testing.T, s eventsource.Store) {
	ss, _ := eventsource.As[eventsource.SnapshotStore](s)
	ctx := ctxFor(t)
	if _, err := ss.LoadSnapshot(ctx, "snap-1", 0); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("LoadSnapshot of a stream without snapshots: %v, want ErrNotFound", err)
	}
	mustAppend(t, s, "snap-1", eventsource.NoStream, recs(10, "S")...)
	mustAppend(t, s, "snap-2", eventsource.NoStream, recs(3, "S")...)
	save := func(stream string, v int64, data string) {
		t.Helper()
		if err := ss.SaveSnapshot(ctx, eventsource.Snapshot{StreamID: stream, Version: v, Position: uint64(100 + v), Schema: 2, Data: []byte(data)}); err != nil {
			t.Fatalf("SaveSnapshot(%s@%d): %v", stream, v, err)
		}
	}
	save("snap-1", 3, "three")
	save("snap-1", 7, "seven")
	save("snap-1", 5, "five")
	save("snap-2", 2, "other stream")
	for _, c := range []struct {
		atMost  int64
		version int64
		data    string
	}{{0, 7, "seven"}, {10, 7, "seven"}, {7, 7, "seven"}, {6, 5, "five"}, {4, 3, "three"}, {3, 3, "three"}} {
		got, err := ss.LoadSnapshot(ctx, "snap-1", c.atMost)
		if err != nil || got.Version != c.version || got.Position != uint64(100+c.version) || string(got.Data) != c.data || got.Schema != 2 || got.StreamID != "snap-1" {
			t.Fatalf("LoadSnapshot(snap-1, %d) = %+v, %v; want version %d %q", c.atMost, got, err, c.version, c.data)
		}
	}
	if _, err := ss.LoadSnapshot(ctx, "snap-1", 2); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("LoadSnapshot below the oldest: %v, want ErrNotFound", err)
	}
	save("snap-1", 7, "seven again")
	if got, err := ss.LoadSnapshot(ctx, "snap-1", 0); err != nil || string(got.Data) != "seven again" {
		t.Fatalf("a snapshot at the same version is replaced: %q, %v", got.Data, err)
	}
	binary := make([]byte, 300)
	for i := range binary {
		binary[i] = byte(i)
	}
	save("snap-2", 3, string(binary))
	if got, err := ss.LoadSnapshot(ctx, "snap-2", 0); err != nil || !bytes.Equal(got.Data, binary) {
		t.Fatalf("binary snapshot data read back %d bytes, %v", len(got.Data), err)
	}
	for _, bad := range []eventsource.Snapshot{
		{StreamID: "", Version: 1, Schema: 1},
		{StreamID: "snap-1", Version: 0, Schema: 1},
		{StreamID: "snap-1", Version: 1, Schema: 0},
		{StreamID: "snap-1", Version: 1, Schema: 1, Data: make([]byte, eventsource.LimitsOf(s).MaxAppendBytes+1)},
	} {
		if err := ss.SaveSnapshot(ctx, bad); err == nil {
			t.Fatalf("SaveSnapshot(%q@%d schema %d, %d bytes) succeeded", bad.StreamID, bad.Version, bad.Schema, len(bad.Data))
		}
	}
	if d, ok := eventsource.As[eventsource.StreamDeleter](s); ok {
		if err := d.DeleteStream(ctx, "snap-1", eventsource.Any); err != nil {
			t.Fatal(err)
		}
		if _, err := ss.LoadSnapshot(ctx, "snap-1", 0); !errors.Is(err, eventsource.ErrNotFound) {
			t.Fatalf("LoadSnapshot after DeleteStream: %v, want ErrNotFound", err)
		}
		if _, err := ss.LoadSnapshot(ctx, "snap-2", 0); err != nil {
			t.Fatalf("deleting one stream removed another's snapshot: %v", err)
		}
	}
}

package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventsource-go/eventsource"
)

// BenchLoadSnapshotted measures a repository Load of an aggregate of n
// events (seeded once, in appends of 1,000) with a snapshot every
// 1,000 events, so a load reads the newest snapshot and up to 999 events
// after it. s must implement eventsource.SnapshotStore.
func BenchLoadSnapshotted(b *testing.B, s eventsource.Store, n int) {
	ctx := context.Background()
	repo := eventsource.New(&tally{}, eventsource.WithStore(s), eventsource.WithSnapshots(eventsource.SnapshotPolicy{Every: 1000}))
	if err := repo.Bind(&tallied{}); err != nil {
		b.Fatal(err)
	}
	const id = "bench-snapshotted"
	for version := 0; version < n; {
		batch := make([]eventsource.Event, min(1000, n-version))
		for i := range batch {
			batch[i] = &tallied{Model: eventsource.Model{ID: id, Version: int64(version + i + 1)}, N: int64(i), Tag: fmt.Sprint(i % 10)}
		}
		if err := repo.Save(ctx, batch...); err != nil {
			b.Fatal(err)
		}
		version += len(batch)
		if version%1000 == 0 {
			if err := repo.Snapshot(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t, err := repo.Load(ctx, id)
		if err != nil || t.Count != n {
			b.Fatalf("Load: %+v, %v", t, err)
		}
	}
}

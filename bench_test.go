package eventsource_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/gobcodec"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/store/sqlite"
	"github.com/eventsource-go/eventsource/store/storetest"
)

func seedCart(b *testing.B, n int) (*eventsource.Repository[*Cart], *memory.Store) {
	b.Helper()
	store := memory.New()
	repo := eventsource.New(&Cart{}, eventsource.WithStore(store))
	if err := repo.Bind(&ItemAdded{}, &ItemRemoved{}, &Renamed{}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < n; i += 100 {
		events := make([]eventsource.Event, 100)
		for j := range events {
			events[j] = &ItemAdded{Model: eventsource.Model{ID: "cart", Version: int64(i + j + 1)}, Name: fmt.Sprint("item-", i+j)}
		}
		if err := repo.Save(ctx, events...); err != nil {
			b.Fatal(err)
		}
	}
	return repo, store
}

// BenchmarkLoad1000 loads a 1,000-event aggregate through the repository;
// BenchmarkLoad1000Direct does the same work by hand (store read, decode,
// fold), the baseline the repository's overhead is measured against.
func BenchmarkLoad1000(b *testing.B) {
	repo, _ := seedCart(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, err := repo.Load(ctx, "cart")
		if err != nil || c.Version != 1000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad1000EnvelopeInPayload loads the same aggregate from records
// as the JSON codec wrote them before Model's Version and At became the
// record's envelope: each payload also carries them ("Version":n,"At":…),
// as stores written by earlier versions still hold. Run it beside
// BenchmarkLoad1000 to see what keeping them out of the payload saves.
func BenchmarkLoad1000EnvelopeInPayload(b *testing.B) {
	repo, _ := seedCart(b, 0)
	store := memory.New()
	repo = eventsource.New(&Cart{}, eventsource.WithStore(store), eventsource.WithSerializer(repo.Serializer()))
	ctx := context.Background()
	at := time.Date(2026, 12, 4, 2, 37, 45, 123456789, time.UTC).Format(time.RFC3339Nano)
	for i := 0; i < 1000; i += 100 {
		recs := make([]eventsource.Record, 100)
		for j := range recs {
			recs[j] = eventsource.Record{Type: "ItemAdded", Codec: "json",
				Data: fmt.Appendf(nil, `{"ID":"cart","Version":%d,"At":%q,"Name":"item-%d"}`, i+j+1, at, i+j)}
		}
		if _, err := store.Append(ctx, "cart", eventsource.Any, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := repo.Load(ctx, "cart")
		if err != nil || c.Version != 1000 {
			b.Fatal(c, err)
		}
	}
}

func BenchmarkLoad1000Direct(b *testing.B) {
	repo, store := seedCart(b, 1000)
	ser := repo.Serializer()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c := &Cart{}
		for r, err := range store.ReadStream(ctx, "cart", 1, 0) {
			if err != nil {
				b.Fatal(err)
			}
			e, err := ser.UnmarshalEvent(r)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.On(e); err != nil {
				b.Fatal(err)
			}
		}
		if c.Version != 1000 {
			b.Fatal(c.Version)
		}
	}
}

func benchRoundTrip(b *testing.B, reg *eventsource.Registry) {
	if err := reg.Bind(&ItemAdded{}); err != nil {
		b.Fatal(err)
	}
	e := &ItemAdded{Model: eventsource.Model{ID: "cart-123", Version: 42}, Name: "a reasonably sized item name"}
	b.ReportAllocs()
	for b.Loop() {
		r, err := reg.MarshalEvent(e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := reg.UnmarshalEvent(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRoundTripJSON(b *testing.B) { benchRoundTrip(b, eventsource.NewRegistry(nil)) }
func BenchmarkRoundTripGob(b *testing.B)  { benchRoundTrip(b, eventsource.NewRegistry(gobcodec.New())) }

// BenchmarkLoad100kSnapshotted: a 100,500-event aggregate with a snapshot
// every 1,000 events, on SQLite (a snapshot and 500 events per load).
func BenchmarkLoad100kSnapshotted(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "snap.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchLoadSnapshotted(b, s, 100_500)
}

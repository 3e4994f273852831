package eventsource_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/gobcodec"
	"github.com/eventsource-go/eventsource/store/memory"
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

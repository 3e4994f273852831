package fastjson_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/fastjson"
	"github.com/eventsource-go/eventsource/codec/jsoncodec"
	"github.com/eventsource-go/eventsource/store/memory"
)

// benchLoad1000 loads a 1,000-event aggregate from the memory store with
// codec, the workload of the root package's BenchmarkLoad1000 (an event of
// an aggregate ID and a short name).
func benchLoad1000(b *testing.B, codec eventsource.Codec) {
	ctx := context.Background()
	store := memory.New()
	repo := eventsource.New(&Counter{}, eventsource.WithStore(store), eventsource.WithSerializer(eventsource.NewRegistry(codec)))
	if err := repo.Bind(&Added{}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 1000; i += 100 {
		events := make([]eventsource.Event, 100)
		for j := range events {
			events[j] = &Added{Model: eventsource.Model{ID: "cart", Version: int64(i + j + 1)}, Name: fmt.Sprint("item-", i+j)}
		}
		if err := repo.Save(ctx, events...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := repo.Load(ctx, "cart")
		if err != nil || c.Version != 1000 {
			b.Fatal(err)
		}
	}
}

type Added struct {
	eventsource.Model
	Name string
}

type Counter struct {
	Names   []string
	Version int64
}

func (c *Counter) On(e eventsource.Event) error {
	c.Names = append(c.Names, e.(*Added).Name)
	c.Version = e.EventVersion()
	return nil
}

func BenchmarkLoad1000StdJSON(b *testing.B)  { benchLoad1000(b, jsoncodec.New()) }
func BenchmarkLoad1000FastJSON(b *testing.B) { benchLoad1000(b, fastjson.New()) }

package memory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/memory"
)

func benchAppend(b *testing.B, n int) {
	s := memory.New()
	ctx := context.Background()
	batch := make([]eventsource.Record, n)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for j := range batch {
			batch[j] = eventsource.Record{Type: "Bench", Data: []byte(`{"n":1}`)}
		}
		if _, err := s.Append(ctx, fmt.Sprint("s-", i%1000), eventsource.Any, batch); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAppend1(b *testing.B)   { benchAppend(b, 1) }
func BenchmarkAppend100(b *testing.B) { benchAppend(b, 100) }

func BenchmarkReadStream1000(b *testing.B) {
	s := memory.New()
	ctx := context.Background()
	batch := make([]eventsource.Record, 1000)
	for j := range batch {
		batch[j] = eventsource.Record{Type: "Bench", Data: []byte(`{"n":1}`)}
	}
	if _, err := s.Append(ctx, "s", eventsource.NoStream, batch); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for _, err := range s.ReadStream(ctx, "s", 1, 0) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 1000 {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

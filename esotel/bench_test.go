package esotel_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/esotel"
	"github.com/eventsource-go/eventsource/store/memory"
)

// BenchmarkAppendOverhead measures the instrumented memory store with no
// SDK installed (the global providers, as a program that links the API but
// sets up nothing) beside the plain memory store: rounds alternate plain
// and instrumented (A B, B A, …), each on a fresh store and a collected heap, 50,000 single-event appends to
// 1,000 streams; it reports ns per append for each (median, min, max) and
// the median of the per-round ratios.
//
//	cd esotel && go test -run '^$' -bench AppendOverhead -benchtime 1x .
func BenchmarkAppendOverhead(b *testing.B) {
	const n, rounds = 50_000, 15
	streams := make([]string, 1000)
	for i := range streams {
		streams[i] = fmt.Sprint("account-", i)
	}
	recs := []eventsource.Record{{Type: "Deposited", Codec: "json", Data: []byte(`{"amount":5}`)}}
	run := func(s eventsource.Store) float64 {
		ctx := context.Background()
		runtime.GC() // each run starts on a collected heap
		start := time.Now()
		for i := range n {
			if _, err := s.Append(ctx, streams[i%len(streams)], eventsource.Any, recs); err != nil {
				b.Fatal(err)
			}
		}
		return float64(time.Since(start).Nanoseconds()) / n
	}
	for b.Loop() {
		var plain, inst, ratio []float64
		for r := range rounds {
			s, err := esotel.NewStore(memory.New())
			if err != nil {
				b.Fatal(err)
			}
			var p, i float64
			if r%2 == 0 { // A B, then B A: neither always runs second
				p, i = run(memory.New()), run(s)
			} else {
				i, p = run(s), run(memory.New())
			}
			plain, inst, ratio = append(plain, p), append(inst, i), append(ratio, i/p)
		}
		for _, xs := range [][]float64{plain, inst, ratio} {
			slices.Sort(xs)
		}
		b.ReportMetric(plain[rounds/2], "plain-ns/append")
		b.ReportMetric(inst[rounds/2], "instrumented-ns/append")
		b.ReportMetric(ratio[rounds/2], "ratio-median")
		b.ReportMetric(ratio[0], "ratio-min")
		b.ReportMetric(ratio[rounds-1], "ratio-max")
	}
}

// BenchmarkAppendPlain and BenchmarkAppendInstrumented are the two sides
// of BenchmarkAppendOverhead as plain loops, for an instruction count
// (valgrind --tool=callgrind, the same -benchtime for both): on a shared
// machine the count is exact where the time per round varies by ±15%. The
// .../small variants append a 12-byte event without metadata, the
// .../typical ones a 120-byte event with two metadata keys (a correlation
// and a causation ID).
func BenchmarkAppendPlain(b *testing.B) {
	for _, ev := range benchEvents {
		b.Run(ev.name, func(b *testing.B) { benchAppend(b, memory.New(), ev.rec) })
	}
}

func BenchmarkAppendInstrumented(b *testing.B) {
	for _, ev := range benchEvents {
		b.Run(ev.name, func(b *testing.B) {
			s, err := esotel.NewStore(memory.New())
			if err != nil {
				b.Fatal(err)
			}
			benchAppend(b, s, ev.rec)
		})
	}
}

var benchEvents = []struct {
	name string
	rec  eventsource.Record
}{
	{"small", eventsource.Record{Type: "Deposited", Codec: "json", Data: []byte(`{"amount":5}`)}},
	{"typical", eventsource.Record{Type: "MoneyDeposited", Codec: "json",
		Data:     []byte(`{"account":"acc-7f3a9c","amount":12550,"currency":"EUR","teller":"t-0042","reference":"INV-2026-000123","note":"cash"}`),
		Metadata: map[string]string{"correlation_id": "5f0c6a52-9a7e-4f1e-b2d4-2f6f0c1e9a11", "causation_id": "0b9d7e1c-3f2a-4c8e-9d6b-7a5e4c3b2a19"}}},
}

func benchAppend(b *testing.B, s eventsource.Store, rec eventsource.Record) {
	ctx := context.Background()
	recs := []eventsource.Record{rec}
	streams := make([]string, 1000)
	for i := range streams {
		streams[i] = fmt.Sprint("account-", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(ctx, streams[i%len(streams)], eventsource.Any, recs); err != nil {
			b.Fatal(err)
		}
	}
}

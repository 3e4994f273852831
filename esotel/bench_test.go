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

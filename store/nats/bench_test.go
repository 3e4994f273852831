package nats_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
)

// benchTarget is the server benchmarks run against: ES_TEST_NATS_URL's when
// set, an in-process one otherwise.
func benchTarget(b *testing.B) target {
	if u := testenvURL(); u != "" {
		return connect(b, u)
	}
	return connect(b, startServer(b, b.TempDir()).ClientURL())
}

func benchRecord() eventsource.Record {
	return eventsource.Record{Type: "Deposited", Codec: "json",
		Data:     []byte(`{"account":"acct-000123","amount":4200,"currency":"EUR","note":"benchmark deposit"}`),
		Metadata: map[string]string{"tenant": "a"}}
}

// runWriters runs b.N single-event appends spread over writers goroutines,
// each on its own stream, and reports events/s.
func runWriters(b *testing.B, writers int, appendOne func(ctx context.Context, w, i int) error) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; next.Add(1) <= int64(b.N); i++ {
				if err := appendOne(ctx, w, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkAppend1 appends one event per call through the store, beside a
// raw js.Publish of a message of the same size with the same
// expected-last-subject-sequence header (the store's commit without its
// version read, event ID claim and envelope).
func BenchmarkAppend1(b *testing.B) {
	tg := benchTarget(b)
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("Store/writers=%d", writers), func(b *testing.B) {
			s := newStore(b, tg)
			versions := make([]int64, writers)
			runWriters(b, writers, func(ctx context.Context, w, i int) error {
				_, err := s.Append(ctx, fmt.Sprintf("bench-%d", w), eventsource.Exact(versions[w]), []eventsource.Record{benchRecord()})
				versions[w]++
				return err
			})
		})
		b.Run(fmt.Sprintf("RawPublish/writers=%d", writers), func(b *testing.B) {
			name, prefix := randomName("ESB_"), randomName("esb")
			ctx := context.Background()
			if _, err := tg.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}, Storage: jetstream.FileStorage}); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = tg.js.DeleteStream(context.Background(), name) })
			r := benchRecord()
			body := make([]byte, len(r.Data)+len(r.Type)+len(r.Codec)+36+16)
			seqs := make([]uint64, writers)
			runWriters(b, writers, func(ctx context.Context, w, i int) error {
				m := &natsgo.Msg{Subject: fmt.Sprintf("%s.bench-%d", prefix, w), Data: body}
				ack, err := tg.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(seqs[w]))
				if err == nil {
					seqs[w] = ack.Sequence
				}
				return err
			})
		})
	}
}

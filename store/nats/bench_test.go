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
	esnats "github.com/eventsource-go/eventsource/store/nats"
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

// BenchmarkAppend1SuppliedID is BenchmarkAppend1/Store with an event ID the
// caller supplies: the store claims it in the index before the commit.
func BenchmarkAppend1SuppliedID(b *testing.B) {
	tg := benchTarget(b)
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := newStore(b, tg)
			versions := make([]int64, writers)
			runWriters(b, writers, func(ctx context.Context, w, i int) error {
				r := benchRecord()
				r.EventID = eventsource.NewEventID()
				_, err := s.Append(ctx, fmt.Sprintf("bench-%d", w), eventsource.Exact(versions[w]), []eventsource.Record{r})
				versions[w]++
				return err
			})
		})
	}
}

// BenchmarkRead reads 1,000 one-event commits of one stream (interleaved
// with another stream's 1,000) and the whole log of 2,000, through the store
// and through a raw JetStream consumer fetching the same subjects in batches
// of the same size (256) without decoding them.
func BenchmarkRead(b *testing.B) {
	tg := benchTarget(b)
	ctx := context.Background()
	name, prefix := randomName("ESR_"), randomName("esr")
	s := esnats.New(tg.js, esnats.WithStreamName(name), esnats.WithSubjectPrefix(prefix))
	b.Cleanup(func() {
		s.Close()
		_ = tg.js.DeleteStream(context.Background(), name)
		_ = tg.js.DeleteStream(context.Background(), name+"_IDS")
		_ = tg.js.DeleteStream(context.Background(), name+"_META")
	})
	const commits = 1000
	for i := 0; i < commits; i++ {
		for _, id := range []string{"a", "b"} {
			if _, err := s.Append(ctx, id, eventsource.Exact(int64(i)), []eventsource.Record{benchRecord()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	stream, err := tg.js.Stream(ctx, name)
	if err != nil {
		b.Fatal(err)
	}
	raw := func(b *testing.B, filter string, want int) {
		cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
			DeliverPolicy: jetstream.DeliverAllPolicy, FilterSubject: filter,
			AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, InactiveThreshold: time.Minute,
		})
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for got < want {
			batch, err := cons.FetchNoWait(min(want-got, 256))
			if err != nil {
				b.Fatal(err)
			}
			for m := range batch.Messages() {
				if _, err := m.Metadata(); err != nil {
					b.Fatal(err)
				}
				got++
			}
			if err := batch.Error(); err != nil {
				b.Fatal(err)
			}
		}
		if err := stream.DeleteConsumer(ctx, cons.CachedInfo().Name); err != nil {
			b.Fatal(err)
		}
	}
	count := func(b *testing.B, seq func(func(eventsource.Record, error) bool), want int) {
		n := 0
		for _, err := range seq {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != want {
			b.Fatalf("read %d records, want %d", n, want)
		}
	}
	report := func(b *testing.B, events int) {
		b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("Stream/Store", func(b *testing.B) {
		for b.Loop() {
			count(b, s.ReadStream(ctx, "a", 1, 0), commits)
		}
		report(b, commits)
	})
	b.Run("Stream/RawConsumer", func(b *testing.B) {
		for b.Loop() {
			raw(b, esnats.Subject(s, "a"), commits)
		}
		report(b, commits)
	})
	b.Run("All/Store", func(b *testing.B) {
		for b.Loop() {
			count(b, s.ReadAll(ctx, 0, eventsource.Filter{}), 2*commits)
		}
		report(b, 2*commits)
	})
	b.Run("All/RawConsumer", func(b *testing.B) {
		for b.Loop() {
			raw(b, "", 2*commits)
		}
		report(b, 2*commits)
	})
	// A short read of the log's last 4 commits (one direct get each), as a
	// subscriber that keeps up does.
	head, err := s.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	tail := (head>>16 - 3) << 16
	b.Run("Tail/Store", func(b *testing.B) {
		for b.Loop() {
			count(b, s.ReadAll(ctx, tail, eventsource.Filter{}), 4)
		}
		report(b, 4)
	})
	// The same reads with a rule in force on stream a (one that retires
	// nothing it reads: every record is checked).
	if _, err := s.SetStreamMetadata(ctx, "a", eventsource.NoStream, eventsource.StreamMetadata{MaxAge: 24 * time.Hour}); err != nil {
		b.Fatal(err)
	}
	b.Run("Stream/StoreRuled", func(b *testing.B) {
		for b.Loop() {
			count(b, s.ReadStream(ctx, "a", 1, 0), commits)
		}
		report(b, commits)
	})
	b.Run("All/StoreRuled", func(b *testing.B) {
		for b.Loop() {
			count(b, s.ReadAll(ctx, 0, eventsource.Filter{}), 2*commits)
		}
		report(b, 2*commits)
	})
	b.Run("Tail/StoreRuled", func(b *testing.B) {
		for b.Loop() {
			count(b, s.ReadAll(ctx, tail, eventsource.Filter{}), 4)
		}
		report(b, 4)
	})
}

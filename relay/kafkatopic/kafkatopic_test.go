package kafkatopic_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/relay"
	"github.com/eventsource-go/eventsource/relay/kafkatopic"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// A relay to Kafka (franz-go's kfake cluster, in process, three
// partitions): every event once, its stream as the key, each stream's
// events in order on one partition, the metadata as headers.
func TestRelayToKafka(t *testing.T) {
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()

	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 200
	for i := range n {
		if _, err := s.Append(ctx, fmt.Sprint("account-", i%6), eventsource.Any, []eventsource.Record{{Type: "Deposited", Codec: "json",
			Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}}); err != nil {
			t.Fatal(err)
		}
	}
	cps, err := sqlcheckpoint.New(s.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	topic := kafkatopic.OpenTopic(producer, "events")
	defer topic.Shutdown(ctx)
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	r := relay.New("to-kafka", s, cps, topic, projection.OnCaughtUp(cancel), projection.WithPolling(2*time.Millisecond, 20*time.Millisecond))
	if err := r.Run(rctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	versions := map[string]int64{}
	partition := map[string]int32{}
	ids := map[string]bool{}
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	for len(ids) < n {
		fetches := consumer.PollFetches(pctx)
		if err := pctx.Err(); err != nil {
			t.Fatalf("%d of %d records consumed: %v", len(ids), n, err)
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			h := map[string]string{}
			for _, kv := range rec.Headers {
				h[kv.Key] = string(kv.Value)
			}
			stream := string(rec.Key)
			v, _ := strconv.ParseInt(h[relay.KeyVersion], 10, 64)
			if h[relay.KeyStream] != stream || v != versions[stream]+1 || ids[h[relay.KeyEventID]] {
				t.Errorf("record %s v%d (headers %v) after v%d", stream, v, h, versions[stream])
			}
			if p, ok := partition[stream]; ok && p != rec.Partition {
				t.Errorf("%s on partitions %d and %d", stream, p, rec.Partition)
			}
			partition[stream], versions[stream], ids[h[relay.KeyEventID]] = rec.Partition, v, true
		})
	}
	if len(ids) != n {
		t.Fatalf("%d events consumed, want %d", len(ids), n)
	}
}

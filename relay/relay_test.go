package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/mempubsub"
	"gocloud.dev/pubsub/rabbitpubsub"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/relay"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

func openStore(t *testing.T, path string) (*sqlite.Store, *sqlcheckpoint.Store) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cps, err := sqlcheckpoint.New(s.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	return s, cps
}

func appendN(t *testing.T, s eventsource.Store, n int) {
	t.Helper()
	for i := range n {
		rec := eventsource.Record{Type: "Deposited", Codec: "json", Data: []byte(fmt.Sprintf(`{"i":%d}`, i)), Metadata: map[string]string{"teller": fmt.Sprint(i % 3)}}
		if _, err := s.Append(context.Background(), fmt.Sprint("account-", i%7), eventsource.Any, []eventsource.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
}

// runUntilCaughtUp runs r until it has published everything committed.
func runUntilCaughtUp(t *testing.T, name string, s eventsource.Store, cps projection.CheckpointStore, topic *pubsub.Topic) *relay.Relay {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := relay.New(name, s, cps, topic, projection.OnCaughtUp(cancel), projection.WithPolling(2*time.Millisecond, 20*time.Millisecond))
	if err := r.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("relay: %v", err)
	}
	return r
}

// Every event reaches the topic once, in log order, with its data as body
// and what it is as metadata; the checkpoint counts what was published.
func TestRelayMem(t *testing.T) {
	ctx := context.Background()
	s, cps := openStore(t, filepath.Join(t.TempDir(), "events.db"))
	appendN(t, s, 250)
	topic := mempubsub.NewTopic()
	defer topic.Shutdown(ctx)
	sub := mempubsub.NewSubscription(topic, time.Minute)
	defer sub.Shutdown(ctx)
	r := runUntilCaughtUp(t, "relay-mem", s, cps, topic)
	if r.Published() != 250 || r.Checkpoint().Position != 250 {
		t.Fatalf("published %d, checkpoint at %d", r.Published(), r.Checkpoint().Position)
	}
	got := map[string]*pubsub.Message{} // mempubsub delivers in no set order: RabbitMQ's test checks order
	for range 250 {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := sub.Receive(rctx)
		cancel()
		if err != nil {
			t.Fatalf("receive after %d: %v", len(got), err)
		}
		m.Ack()
		got[m.Metadata[relay.KeyEventID]] = m
	}
	for r, err := range s.ReadAll(ctx, 1, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		m := got[r.EventID]
		if m == nil {
			t.Fatalf("no message for %s", r.EventID)
		}
		md := m.Metadata
		var meta map[string]string
		_ = json.Unmarshal([]byte(md[relay.KeyMetadata]), &meta)
		if string(m.Body) != string(r.Data) || md[relay.KeyStream] != r.StreamID || md[relay.KeyVersion] != fmt.Sprint(r.Version) ||
			md[relay.KeyPosition] != fmt.Sprint(r.Position) || md[relay.KeyType] != r.Type || md[relay.KeyCodec] != "json" ||
			meta["teller"] != r.Metadata["teller"] || md[relay.KeyRecordedAt] == "" {
			t.Fatalf("message %+v for record %+v", md, r)
		}
	}
	// Run again: nothing new, nothing sent.
	appendN(t, s, 3)
	r = runUntilCaughtUp(t, "relay-mem", s, cps, topic)
	if r.Published() != 253 {
		t.Fatalf("published %d after three more, want 253", r.Published())
	}
}

// rabbit declares a fanout exchange with a queue bound to it.
func rabbit(t *testing.T) (*amqp.Connection, string, string) {
	t.Helper()
	url := os.Getenv(testenv.RabbitMQ.Env)
	if url == "" {
		url = testenv.RabbitMQ.Default
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("RabbitMQ at %s: %v (start it: %s)", url, err, testenv.RabbitMQ.Start)
		}
		t.Skipf("RabbitMQ at %s: %v; start it with %s, or set %s", url, err, testenv.RabbitMQ.Start, testenv.RabbitMQ.Env)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	exchange, queue := testenv.Name("es_relay_x_"), testenv.Name("es_relay_q_")
	if err := ch.ExchangeDeclare(exchange, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ch, err := conn.Channel(); err == nil {
			ch.QueueDelete(queue, false, false, false)
			ch.ExchangeDelete(exchange, false, false)
			ch.Close()
		}
	})
	return conn, exchange, queue
}

// drain returns the messages in queue: event ID → how many times, in
// arrival order of first sight.
func drain(t *testing.T, conn *amqp.Connection, queue string, want int) (map[string]int, []amqp.Delivery) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	seen := map[string]int{}
	var all []amqp.Delivery
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < want || time.Now().Before(deadline.Add(-19*time.Second)) {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		seen[d.MessageId]++
		all = append(all, d)
	}
	return seen, all
}

// On RabbitMQ: each event once, its event ID as the message ID, stream
// order kept.
func TestRelayRabbitMQ(t *testing.T) {
	conn, exchange, queue := rabbit(t)
	s, cps := openStore(t, filepath.Join(t.TempDir(), "events.db"))
	appendN(t, s, 120)
	topic := rabbitpubsub.OpenTopic(conn, exchange, nil)
	defer topic.Shutdown(context.Background())
	runUntilCaughtUp(t, "relay-rabbit", s, cps, topic)
	seen, all := drain(t, conn, queue, 120)
	if len(seen) != 120 || len(all) != 120 {
		t.Fatalf("%d distinct messages of %d received, want 120 once each", len(seen), len(all))
	}
	last := map[string]int64{}
	for _, d := range all {
		stream := fmt.Sprint(d.Headers[relay.KeyStream])
		v, _ := strconv.ParseInt(fmt.Sprint(d.Headers[relay.KeyVersion]), 10, 64)
		if v != last[stream]+1 {
			t.Fatalf("%s version %d after %d", stream, v, last[stream])
		}
		last[stream] = v
	}
}

// The relay is killed (SIGKILL) while it publishes and started again:
// every event arrives, a duplicate only inside the unacknowledged window,
// with the same message ID.
func TestRelayKill9(t *testing.T) {
	if os.Getenv("ES_RELAY_CHILD") != "" {
		relayChild()
		return
	}
	conn, exchange, queue := rabbit(t)
	path := filepath.Join(t.TempDir(), "events.db")
	s, _ := openStore(t, path)
	const n = 3000
	appendN(t, s, n)
	for round := 0; ; round++ {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestRelayKill9$")
		cmd.Env = append(os.Environ(), "ES_RELAY_CHILD=1", "ES_RELAY_DB="+path, "ES_RELAY_EXCHANGE="+exchange,
			"ES_RELAY_URL="+testenv.RabbitMQ.Default)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if round < 3 {
			time.Sleep(time.Duration(150+100*round) * time.Millisecond)
			_ = cmd.Process.Kill()
			<-done
			continue
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("last run: %v", err)
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatal("the last run did not finish")
		}
		break
	}
	seen, all := drain(t, conn, queue, n)
	var ids []string
	for r, err := range s.ReadAll(context.Background(), 1, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.EventID)
	}
	dups := 0
	for _, id := range ids {
		switch c := seen[id]; {
		case c == 0:
			t.Fatalf("event %s never arrived", id)
		case c > 1:
			dups += c - 1
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct message IDs, want %d", len(seen), n)
	}
	if dups > 3*100 {
		t.Fatalf("%d duplicates after 3 kills; the window is 100 events", dups)
	}
	t.Logf("%d messages for %d events after 3 kills: %d duplicates", len(all), n, dups)
}

// relayChild is the relay process of TestRelayKill9: it relays until
// caught up, then exits.
func relayChild() {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, os.Getenv("ES_RELAY_DB"))
	if err != nil {
		panic(err)
	}
	cps, err := sqlcheckpoint.New(s.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		panic(err)
	}
	conn, err := amqp.Dial(os.Getenv("ES_RELAY_URL"))
	if err != nil {
		panic(err)
	}
	topic := rabbitpubsub.OpenTopic(conn, os.Getenv("ES_RELAY_EXCHANGE"), nil)
	rctx, cancel := context.WithCancel(ctx)
	r := relay.New("relay-kill", s, cps, topic, projection.OnCaughtUp(cancel), projection.WithLease(time.Second),
		projection.WithPolling(2*time.Millisecond, 20*time.Millisecond))
	if err := r.Run(rctx); !errors.Is(err, context.Canceled) {
		panic(err)
	}
	topic.Shutdown(ctx)
	conn.Close()
	os.Exit(0)
}

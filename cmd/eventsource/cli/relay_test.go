package cli_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/cmd/eventsource/cli"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/storeurl"
)

// TestMain lets a test run the tool as a child process (ES_CLI_CHILD=1):
// the arguments after "--" are the tool's.
func TestMain(m *testing.M) {
	if os.Getenv("ES_CLI_CHILD") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"eventsource"}, os.Args[i+1:]...)
				os.Exit(cli.Main())
			}
		}
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// The relay command publishes a store's events to a RabbitMQ exchange,
// is killed with SIGKILL in the middle, runs again until caught up, and
// stops on an interrupt: every event is in the queue, a duplicate only
// inside the batches the kills cut, with the same message ID.
func TestRelayCommandKill9(t *testing.T) {
	rabbitURL := testenv.RabbitMQ.Default
	if v := os.Getenv(testenv.RabbitMQ.Env); v != "" {
		rabbitURL = v
	}
	conn, err := amqp.Dial(rabbitURL)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("RabbitMQ at %s: %v", rabbitURL, err)
		}
		t.Skipf("RabbitMQ at %s: %v; start it with %s", rabbitURL, err, testenv.RabbitMQ.Start)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	exchange, queue := testenv.Name("es_cli_relay_"), testenv.Name("es_cli_relay_q_")
	if err := ch.ExchangeDeclare(exchange, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer ch.QueueDelete(queue, false, false, false)
	if err := ch.QueueBind(queue, "", exchange, false, nil); err != nil {
		t.Fatal(err)
	}

	store := "sqlite://" + filepath.Join(t.TempDir(), "bank.db")
	s, err := storeurl.Open(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := range n {
		if _, err := s.Append(context.Background(), fmt.Sprint("account-", i%9), eventsource.Any,
			[]eventsource.Record{{Type: "Deposited", Codec: "json", Data: []byte(fmt.Sprintf(`{"amount":%d}`, i))}}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for r, err := range s.ReadAll(context.Background(), 1, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.EventID)
	}
	s.Close()

	start := func() (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(os.Args[0], "-test.run", "^$", "--", "-s", store, "relay", "--to", "rabbit://"+exchange, "--name", "bank-out", "--batch", "50", "--lease", "1s")
		cmd.Env = append(os.Environ(), "ES_CLI_CHILD=1", "RABBIT_SERVER_URL="+rabbitURL)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, bufio.NewScanner(stderr)
	}
	for _, after := range []time.Duration{200 * time.Millisecond, 350 * time.Millisecond} {
		cmd, _ := start()
		time.Sleep(after)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	cmd, lines := start()
	caught := make(chan string, 1)
	go func() {
		var all []string
		for lines.Scan() {
			all = append(all, lines.Text())
			if strings.Contains(lines.Text(), "caught up at position") {
				caught <- strings.Join(all, "\n")
			}
		}
	}()
	select {
	case out := <-caught:
		if !strings.Contains(out, fmt.Sprintf("position %d", n)) {
			t.Fatalf("caught up at another position:\n%s", out)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the relay did not catch up")
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("relay after an interrupt: %v", err)
	}

	seen := map[string]int{}
	total := 0
	for idle := 0; idle < 50; {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			idle++
			time.Sleep(10 * time.Millisecond)
			continue
		}
		idle = 0
		seen[d.MessageId]++
		total++
	}
	for _, id := range ids {
		if seen[id] == 0 {
			t.Fatalf("event %s never arrived (%d distinct of %d)", id, len(seen), n)
		}
	}
	if len(seen) != n || total-n > 2*50 {
		t.Fatalf("%d messages, %d distinct, for %d events after 2 kills (window 50)", total, len(seen), n)
	}
	t.Logf("%d messages for %d events after 2 kills: %d duplicates", total, n, total-n)
}

// relay --to nats://HOST/SUBJECT publishes into a JetStream stream, each
// event once.
func TestRelayCommandNATS(t *testing.T) {
	ctx := context.Background()
	u := testenv.NATS.URL(t)
	nc, err := natsgo.Connect(u)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ToUpper(testenv.Name("ES_CLI_RELAY_"))
	subject := strings.ToLower(name) + ".out"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	defer js.DeleteStream(ctx, name)
	store := "sqlite://" + filepath.Join(t.TempDir(), "bank.db")
	fillURL(t, store)
	relayUntilCaughtUp(t, store, strings.TrimSuffix(u, "/")+"/"+subject, 35)
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs != 35 {
		t.Fatalf("the stream holds %d messages, want 35 (%v)", info.State.Msgs, err)
	}
}

// relay --to kafka://BROKER/TOPIC produces into Kafka (kfake, in process),
// each event once, keyed by its stream.
func TestRelayCommandKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "bank"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	store := "sqlite://" + filepath.Join(t.TempDir(), "bank.db")
	fillURL(t, store)
	relayUntilCaughtUp(t, store, "kafka://"+strings.Join(cluster.ListenAddrs(), ",")+"/bank", 35)
	consumer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("bank"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < 35 && ctx.Err() == nil {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "es-event-id" {
					seen[string(h.Value)] = true
				}
			}
		})
	}
	if len(seen) != 35 {
		t.Fatalf("%d events in Kafka, want 35", len(seen))
	}
}

// relayUntilCaughtUp runs eventsource relay --to to in a child process
// until it says it caught up at position at, then interrupts it.
func relayUntilCaughtUp(t *testing.T, store, to string, at uint64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^$", "--", "-s", store, "relay", "--to", to)
	cmd.Env = append(os.Environ(), "ES_CLI_CHILD=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	caught := false
	for lines.Scan() {
		if strings.Contains(lines.Text(), fmt.Sprintf("caught up at position %d", at)) {
			caught = true
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	go func() {
		for lines.Scan() {
		}
	}()
	if err := cmd.Wait(); err != nil || !caught {
		t.Fatalf("relay: caught up %v, %v", caught, err)
	}
}

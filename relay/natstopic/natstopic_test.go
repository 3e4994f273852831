package natstopic_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/relay"
	"github.com/eventsource-go/eventsource/relay/natstopic"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// A relay to JetStream on the machine's NATS server: every event once, in
// order per stream, with its metadata as headers; relayed again from the
// start (as after a crash that lost the checkpoint), JetStream drops every
// re-sent message by its Nats-Msg-Id (the event ID).
func TestRelayToJetStream(t *testing.T) {
	ctx := context.Background()
	nc, err := nats.Connect(testenv.NATS.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ToUpper(testenv.Name("ES_RELAY_"))
	subject := strings.ToLower(name) + ".events"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Duplicates: 2 * time.Minute, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	defer js.DeleteStream(ctx, name)

	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 300
	for i := range n {
		if _, err := s.Append(ctx, fmt.Sprint("account-", i%5), eventsource.Any, []eventsource.Record{{Type: "Deposited", Codec: "json",
			Data: []byte(fmt.Sprintf(`{"i":%d}`, i)), Metadata: map[string]string{"teller": "7"}}}); err != nil {
			t.Fatal(err)
		}
	}
	topic := natstopic.OpenTopic(js, subject)
	defer topic.Shutdown(ctx)
	run := func(cps projection.CheckpointStore) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		r := relay.New("to-nats", s, cps, topic, projection.OnCaughtUp(cancel), projection.WithPolling(2*time.Millisecond, 20*time.Millisecond))
		if err := r.Run(rctx); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
	cps, err := sqlcheckpoint.New(s.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	run(cps)
	run(projection.NewMemoryCheckpointStore()) // from position 1 again: every message a duplicate
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("the JetStream stream holds %d messages after relaying %d events twice, want %d", info.State.Msgs, n, n)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]int64{}
	var pos uint64
	for i := range n {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		h := m.Headers()
		stream := h.Get(relay.KeyStream)
		v, _ := strconv.ParseInt(h.Get(relay.KeyVersion), 10, 64)
		p, _ := strconv.ParseUint(h.Get(relay.KeyPosition), 10, 64)
		if v != versions[stream]+1 || p <= pos || h.Get(jetstream.MsgIDHeader) != h.Get(relay.KeyEventID) || h.Get(relay.KeyType) != "Deposited" ||
			!strings.Contains(h.Get(relay.KeyMetadata), `"teller":"7"`) || !strings.HasPrefix(string(m.Data()), `{"i":`) {
			t.Fatalf("message %d: headers %v, data %s", i, h, m.Data())
		}
		versions[stream], pos = v, p
	}
}

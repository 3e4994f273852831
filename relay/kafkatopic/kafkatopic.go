// Package kafkatopic is a gocloud.dev pubsub topic on Kafka (franz-go's
// kgo client), for the relay: each message is produced synchronously
// (acknowledged by the brokers, with the client's idempotent producer) to
// one topic with the event's stream as its Kafka key, so a stream's events
// share a partition and keep their order; its metadata travels as record
// headers, es-event-id among them for consumers to drop repeats.
// gocloud.dev's own Kafka driver is not part of the gocloud.dev release this
// project builds with; this is the part of one a relay needs (a topic).
package kafkatopic

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
	"gocloud.dev/gcerrors"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/driver"

	"github.com/eventsource-go/eventsource/relay/internal/topicdriver"
)

// KeyMetadata is the metadata key whose value becomes the Kafka key (the
// relay's stream).
const KeyMetadata = "es-stream"

// OpenTopic returns a topic producing to the Kafka topic name through
// client.
func OpenTopic(client *kgo.Client, name string) *pubsub.Topic {
	return topicdriver.NewTopic(&sender{client: client, name: name})
}

type sender struct {
	client *kgo.Client
	name   string
}

// Send produces m and waits for the brokers' acknowledgement.
func (s *sender) Send(ctx context.Context, m *driver.Message) error {
	rec := &kgo.Record{Topic: s.name, Value: m.Body}
	if k := m.Metadata[KeyMetadata]; k != "" {
		rec.Key = []byte(k)
	}
	for k, v := range m.Metadata {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if m.BeforeSend != nil {
		if err := m.BeforeSend(topicdriver.Expose(rec)); err != nil {
			return err
		}
	}
	if err := s.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return err
	}
	if m.AfterSend != nil {
		return m.AfterSend(topicdriver.Expose(rec))
	}
	return nil
}

// As exposes the *kgo.Client.
func (s *sender) As(i any) bool { return topicdriver.Expose(s.client)(i) }

// ErrorCode classifies the client's errors.
func (s *sender) ErrorCode(error) gcerrors.ErrorCode { return gcerrors.Unknown }

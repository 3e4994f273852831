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
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"
	"gocloud.dev/gcerrors"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/batcher"
	"gocloud.dev/pubsub/driver"
)

// KeyMetadata is the metadata key whose value becomes the Kafka key (the
// relay's stream).
const KeyMetadata = "es-stream"

// OpenTopic returns a topic producing to the Kafka topic name through
// client.
func OpenTopic(client *kgo.Client, name string) *pubsub.Topic {
	return pubsub.NewTopic(&topic{client: client, name: name}, &batcher.Options{MaxBatchSize: 1, MaxHandlers: 1})
}

type topic struct {
	client *kgo.Client
	name   string
}

// SendBatch produces the messages in order, each after the last one's
// acknowledgement.
func (t *topic) SendBatch(ctx context.Context, ms []*driver.Message) error {
	for _, m := range ms {
		rec := &kgo.Record{Topic: t.name, Value: m.Body}
		if k := m.Metadata[KeyMetadata]; k != "" {
			rec.Key = []byte(k)
		}
		for k, v := range m.Metadata {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		if m.BeforeSend != nil {
			if err := m.BeforeSend(func(i any) bool {
				p, ok := i.(**kgo.Record)
				if ok {
					*p = rec
				}
				return ok
			}); err != nil {
				return err
			}
		}
		if err := t.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return err
		}
		if m.AfterSend != nil {
			if err := m.AfterSend(func(i any) bool {
				p, ok := i.(**kgo.Record)
				if ok {
					*p = rec
				}
				return ok
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// IsRetryable implements driver.Topic: the client retries what it can.
func (t *topic) IsRetryable(error) bool { return false }

// As implements driver.Topic: *kgo.Client.
func (t *topic) As(i any) bool {
	p, ok := i.(**kgo.Client)
	if ok {
		*p = t.client
	}
	return ok
}

// ErrorAs implements driver.Topic.
func (t *topic) ErrorAs(err error, i any) bool { return errors.As(err, i) }

// ErrorCode implements driver.Topic.
func (t *topic) ErrorCode(err error) gcerrors.ErrorCode {
	switch {
	case errors.Is(err, context.Canceled):
		return gcerrors.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return gcerrors.DeadlineExceeded
	}
	return gcerrors.Unknown
}

// Close implements driver.Topic.
func (t *topic) Close() error { return nil }

// Package natstopic is a gocloud.dev pubsub topic on NATS JetStream, for
// the relay: each message is published with nats.go's jetstream client and
// waits for the stream's acknowledgement, its metadata travels as headers,
// and its es-event-id is its Nats-Msg-Id, so JetStream itself drops a
// relay's re-sent duplicates inside the stream's duplicate window (two
// minutes by default). gocloud.dev's own NATS driver (natspubsub) is not
// served by the module proxy this project builds from; this is the part of
// it a relay needs (a topic, no subscriptions).
package natstopic

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocloud.dev/gcerrors"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/batcher"
	"gocloud.dev/pubsub/driver"
)

// DedupeKey is the metadata key whose value becomes the Nats-Msg-Id (the
// relay's event ID).
const DedupeKey = "es-event-id"

// OpenTopic returns a topic publishing to subject, which a JetStream
// stream must capture.
func OpenTopic(js jetstream.JetStream, subject string) *pubsub.Topic {
	return pubsub.NewTopic(&topic{js: js, subject: subject}, &batcher.Options{MaxBatchSize: 1, MaxHandlers: 1})
}

type topic struct {
	js      jetstream.JetStream
	subject string
}

// SendBatch publishes the messages in order, each after the last one's
// acknowledgement.
func (t *topic) SendBatch(ctx context.Context, ms []*driver.Message) error {
	for _, m := range ms {
		msg := nats.NewMsg(t.subject)
		msg.Data = m.Body
		for k, v := range m.Metadata {
			msg.Header.Set(k, v)
		}
		if id := m.Metadata[DedupeKey]; id != "" {
			msg.Header.Set(jetstream.MsgIDHeader, id)
		}
		if m.BeforeSend != nil {
			if err := m.BeforeSend(func(i any) bool {
				p, ok := i.(**nats.Msg)
				if ok {
					*p = msg
				}
				return ok
			}); err != nil {
				return err
			}
		}
		ack, err := t.js.PublishMsg(ctx, msg)
		if err != nil {
			return err
		}
		if m.AfterSend != nil {
			if err := m.AfterSend(func(i any) bool {
				p, ok := i.(**jetstream.PubAck)
				if ok {
					*p = ack
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

// As implements driver.Topic: jetstream.JetStream.
func (t *topic) As(i any) bool {
	p, ok := i.(*jetstream.JetStream)
	if ok {
		*p = t.js
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
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return gcerrors.DeadlineExceeded
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		return gcerrors.NotFound
	}
	return gcerrors.Unknown
}

// Close implements driver.Topic.
func (t *topic) Close() error { return nil }

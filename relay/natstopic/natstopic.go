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
	"gocloud.dev/pubsub/driver"

	"github.com/eventsource-go/eventsource/relay/internal/topicdriver"
)

// DedupeKey is the metadata key whose value becomes the Nats-Msg-Id (the
// relay's event ID).
const DedupeKey = "es-event-id"

// OpenTopic returns a topic publishing to subject, which a JetStream
// stream must capture.
func OpenTopic(js jetstream.JetStream, subject string) *pubsub.Topic {
	return topicdriver.NewTopic(&sender{js: js, subject: subject})
}

type sender struct {
	js      jetstream.JetStream
	subject string
}

// Send publishes m and waits for the stream's acknowledgement.
func (s *sender) Send(ctx context.Context, m *driver.Message) error {
	msg := nats.NewMsg(s.subject)
	msg.Data = m.Body
	for k, v := range m.Metadata {
		msg.Header.Set(k, v)
	}
	if id := m.Metadata[DedupeKey]; id != "" {
		msg.Header.Set(jetstream.MsgIDHeader, id)
	}
	if m.BeforeSend != nil {
		if err := m.BeforeSend(topicdriver.Expose(msg)); err != nil {
			return err
		}
	}
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return err
	}
	if m.AfterSend != nil {
		return m.AfterSend(topicdriver.Expose(ack))
	}
	return nil
}

// As exposes the jetstream.JetStream.
func (s *sender) As(i any) bool { return topicdriver.Expose(s.js)(i) }

// ErrorCode classifies JetStream's errors.
func (s *sender) ErrorCode(err error) gcerrors.ErrorCode {
	switch {
	case errors.Is(err, nats.ErrTimeout):
		return gcerrors.DeadlineExceeded
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		return gcerrors.NotFound
	}
	return gcerrors.Unknown
}

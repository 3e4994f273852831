// Package relay publishes a store's committed events to a message broker
// through gocloud.dev's pubsub (one API over RabbitMQ, AWS SNS and SQS,
// Google Pub/Sub, Azure Service Bus, Kafka and NATS; the program links the
// drivers it needs and opens the topic by URL). It is an outbox that
// cannot lose events:
//
//   - it follows the global log from a durable checkpoint (a
//     projection.CheckpointStore, with its lease: one relay at a time), and
//     the checkpoint moves only past events the broker acknowledged;
//   - after a crash it publishes again from the checkpoint: an event is
//     published twice only inside the unacknowledged window (the batch
//     size), and each time with the same event ID as its deduplication key;
//   - it publishes in log order, one message at a time, so each stream's
//     order is kept.
//
// Each message's body is the event's data; its metadata (the broker's
// attributes or headers) says what the event is:
//
//	es-event-id, es-stream, es-version, es-position, es-type, es-codec,
//	es-recorded-at, and es-metadata (the record's metadata as JSON)
//
// Eight attributes: within SNS's limit of ten. The relay is a projection, so
// the projections commands (and the console) show it and steer it: its
// name's checkpoint holds the position and the number published.
package relay

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"gocloud.dev/pubsub"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

// Metadata keys of a relayed message.
const (
	KeyEventID    = "es-event-id"
	KeyStream     = "es-stream"
	KeyVersion    = "es-version"
	KeyPosition   = "es-position"
	KeyType       = "es-type"
	KeyCodec      = "es-codec"
	KeyRecordedAt = "es-recorded-at"
	KeyMetadata   = "es-metadata"
)

// State is what a relay keeps with its checkpoint.
type State struct {
	Published uint64 `json:"published"` // messages the broker acknowledged
}

// Relay follows a store's log into a topic.
type Relay struct {
	p     *projection.Projection[State]
	topic *pubsub.Topic
	ctx   context.Context
}

// Option configures a Relay: any projection option (projection.WithFilter,
// projection.Where, WithBatchSize for the unacknowledged window, 100 by
// default, WithOwner, WithLogger, …).
type Option = projection.Option

// New returns a relay named name (its checkpoint's name) from events to
// topic.
func New(name string, events eventsource.Store, cps projection.CheckpointStore, topic *pubsub.Topic, opts ...Option) *Relay {
	r := &Relay{topic: topic, ctx: context.Background()}
	opts = append([]Option{projection.WithBatchSize(100)}, opts...)
	r.p = projection.NewProjection(name, events, cps, State{}, r.publish, opts...)
	return r
}

// Run relays until ctx ends, the relay is stopped or deleted through its
// checkpoint, or publishing fails for good (a *projection.FaultError,
// after the error policy's retries).
func (r *Relay) Run(ctx context.Context) error {
	r.ctx = ctx
	return r.p.Run(ctx)
}

// Published is the number of messages acknowledged, as last checkpointed.
func (r *Relay) Published() uint64 { return r.p.State().Published }

// Checkpoint is the relay's checkpoint as last saved.
func (r *Relay) Checkpoint() projection.Checkpoint { return r.p.Checkpoint() }

// Name is the relay's name.
func (r *Relay) Name() string { return r.p.Name() }

func (r *Relay) publish(s State, rec eventsource.Record) (State, error) {
	if err := r.topic.Send(r.ctx, Message(rec)); err != nil {
		return s, err
	}
	s.Published++
	return s, nil
}

// Message is the message a relay sends for rec.
func Message(rec eventsource.Record) *pubsub.Message {
	md := map[string]string{
		KeyEventID: rec.EventID, KeyStream: rec.StreamID, KeyVersion: strconv.FormatInt(rec.Version, 10),
		KeyPosition: strconv.FormatUint(rec.Position, 10), KeyType: rec.Type, KeyCodec: rec.Codec,
		KeyRecordedAt: rec.RecordedAt.UTC().Format(time.RFC3339Nano),
	}
	if len(rec.Metadata) > 0 {
		b, _ := json.Marshal(rec.Metadata)
		md[KeyMetadata] = string(b)
	}
	body := rec.Data
	if body == nil {
		body = []byte{}
	}
	return &pubsub.Message{Body: body, Metadata: md, BeforeSend: dedupe(rec)}
}

// dedupe sets the broker's own message ID where the driver shows it
// (RabbitMQ's message-id property) to the event ID.
func dedupe(rec eventsource.Record) func(as func(any) bool) error {
	return func(as func(any) bool) error {
		var pub *amqp.Publishing
		if as(&pub) {
			pub.MessageId = rec.EventID
		}
		return nil
	}
}

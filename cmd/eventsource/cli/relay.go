package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"gocloud.dev/pubsub"
	_ "gocloud.dev/pubsub/awssnssqs"    // awssns:// and awssqs:// topics
	_ "gocloud.dev/pubsub/mempubsub"    // mem:// (for trying things)
	_ "gocloud.dev/pubsub/rabbitpubsub" // rabbit:// exchanges (RABBIT_SERVER_URL names the server)

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/relay"
	"github.com/eventsource-go/eventsource/relay/kafkatopic"
	"github.com/eventsource-go/eventsource/relay/natstopic"
)

func (a *app) relayCmd() *cobra.Command {
	var f checkpointFlags
	var to, name string
	var streams, categories, types []string
	var batch int
	var lease time.Duration
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Publish the store's events to a message broker, at least once, in order",
		Long: `relay follows the store's global log and publishes each event to a topic
opened by gocloud.dev's pubsub URL: rabbit://EXCHANGE (the server from
RABBIT_SERVER_URL, amqp://guest:guest@localhost:5672/ by default),
awssns:///arn:aws:sns:…?region=…, awssqs://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE?region=…,
or mem://topic; or nats://HOST:4222/SUBJECT, a JetStream stream's subject
(the event ID is the Nats-Msg-Id: JetStream drops re-sent duplicates); or
kafka://HOST:9092/TOPIC (the stream is the Kafka key: one partition per
stream keeps its order). Each message's body is the event's data; its attributes are
es-event-id (the deduplication key, and RabbitMQ's message-id), es-stream,
es-version, es-position, es-type, es-codec, es-recorded-at and es-metadata.

Its checkpoint (a projection named --name, in the store's SQL database or
--checkpoints URL) moves only past events the broker acknowledged: kill it at
any moment and the next run publishes from there, a duplicate only inside
the last unacknowledged batch (--batch), with the same event ID. It publishes
one message at a time, in log order. eventsource projections status NAME
shows it; stop, start and reset steer it. Interrupt (Ctrl-C) to stop.`,
		Example: `  RABBIT_SERVER_URL=amqp://guest:guest@127.0.0.1:5672/ eventsource -s sqlite://bank.db relay --to rabbit://bank-events
  eventsource -s postgres://localhost/app relay --to 'awssns:///arn:aws:sns:eu-west-1:123456789012:events?region=eu-west-1' --category account-`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usagef("--to is required: a topic URL (rabbit://, nats://, kafka://, awssns://, awssqs://, mem://)")
			}
			ctx := cmd.Context()
			s, err := a.openExisting(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			c := &checkpoints{events: s}
			if f.url != "" {
				err = c.fromURL(ctx, &f)
			} else {
				err = c.inStore(&f, a.storeURL)
			}
			defer c.Close()
			if err != nil {
				return err
			}
			topic, closeTopic, err := openTopic(ctx, to)
			if err != nil {
				return err
			}
			defer closeTopic()
			if name == "" {
				name = "relay"
			}
			out := cmd.ErrOrStderr()
			r := relay.New(name, s, c.CheckpointStore, topic,
				projection.WithFilter(eventsource.Filter{Streams: streams, StreamPrefixes: categories, Types: types}),
				projection.WithBatchSize(batch), projection.WithLease(lease),
				projection.OnCaughtUp(func() {
					fmt.Fprintf(out, "-- caught up at position %d; following live (Ctrl-C to stop)\n", lastOf(c, name))
				}))
			fmt.Fprintf(out, "relaying to %s as %q (checkpoint in %s)\n", to, name, c.where)
			err = r.Run(ctx)
			if errors.Is(err, context.Canceled) {
				fmt.Fprintf(out, "stopped: %d messages published in all\n", r.Published())
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "topic URL (required)")
	cmd.Flags().StringVar(&name, "name", "relay", "the relay's checkpoint name")
	cmd.Flags().IntVar(&batch, "batch", 100, "events per checkpoint: the most a restart publishes again")
	cmd.Flags().DurationVar(&lease, "lease", 30*time.Second, "the relay's lease: a relay that died holds off the next one this long")
	cmd.Flags().StringSliceVar(&streams, "stream", nil, "only these streams (repeatable)")
	cmd.Flags().StringSliceVar(&categories, "category", nil, "only streams with this ID prefix (repeatable)")
	cmd.Flags().StringSliceVar(&types, "type", nil, "only these event types (repeatable)")
	cmd.Flags().StringVar(&f.url, "checkpoints", "", "URL of the database holding the checkpoint (default: the event store's)")
	cmd.Flags().StringVar(&f.prefix, "table-prefix", "es_", "prefix of the checkpoint table ({prefix}projections)")
	cmd.Flags().StringVar(&f.schema, "schema", "", "PostgreSQL schema of the checkpoint table")
	return cmd
}

// lastOf is the checkpoint position of name, for messages.
func lastOf(c *checkpoints, name string) uint64 {
	cp, err := c.Load(context.Background(), name)
	if err != nil {
		return 0
	}
	return cp.Position
}

// openTopic opens the relay's topic: nats:// with package natstopic,
// anything else through gocloud.dev's URL opener.
func openTopic(ctx context.Context, to string) (*pubsub.Topic, func(), error) {
	if rest, ok := strings.CutPrefix(to, "kafka://"); ok {
		brokers, name, _ := strings.Cut(rest, "/")
		if name == "" || brokers == "" {
			return nil, nil, usagef("--to %s: name the brokers and the topic: kafka://HOST:9092[,HOST:9092…]/TOPIC", to)
		}
		client, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
		if err != nil {
			return nil, nil, usagef("--to %s: %v", to, err)
		}
		t := kafkatopic.OpenTopic(client, name)
		return t, func() { t.Shutdown(context.WithoutCancel(ctx)); client.Close() }, nil
	}
	if rest, ok := strings.CutPrefix(to, "nats://"); ok {
		hostPort, subject, _ := strings.Cut(rest, "/")
		if subject == "" {
			return nil, nil, usagef("--to %s: name the subject: nats://HOST:4222/SUBJECT", to)
		}
		nc, err := nats.Connect("nats://" + hostPort)
		if err != nil {
			return nil, nil, fmt.Errorf("nats: connect to %s: %w", hostPort, err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		t := natstopic.OpenTopic(js, subject)
		return t, func() { t.Shutdown(context.WithoutCancel(ctx)); nc.Close() }, nil
	}
	t, err := pubsub.OpenTopic(ctx, to)
	if err != nil {
		return nil, nil, usagef("--to %s: %v", to, err)
	}
	return t, func() { t.Shutdown(context.WithoutCancel(ctx)) }, nil
}

// Package lambda turns the DynamoDB stream of a DynamoDB store's table
// into the store's events, for an AWS Lambda function that forwards them
// to SNS, to Kinesis or anywhere else: the seed library's "DynamoDB to SNS"
// and "DynamoDB to Kinesis" functions.
//
//	func main() {
//		cfg, _ := config.LoadDefaultConfig(context.Background())
//		f := &lambda.Kinesis{Client: kinesis.NewFromConfig(cfg), Stream: os.Getenv("EVENTS_STREAM")}
//		awslambda.Start(lambda.Handler(f))
//	}
//
// Deploying it: create the table with its stream on (eventsource dynamodb
// create-table --stream, or --terraform for the HCL: stream_enabled, view
// NEW_IMAGE), and map the stream to the function with an event source
// mapping (starting position TRIM_HORIZON, batch size up to 1,000,
// bisect-on-error and a maximum retry count, an on-failure destination).
// Lambda reads each shard in order and retries a failed batch whole, so a
// function may see a record more than once: each forwarded message carries
// the event ID (and SNS FIFO topics get it as deduplication ID), and
// consumers drop what they have seen. Records of one stream are on one
// shard (the item's partition key is the stream), so their order holds;
// the global log's order across streams is the store's own ReadAll (its
// "log" index), as the store's documentation describes.
package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/eventsource-go/eventsource"
	esdynamodb "github.com/eventsource-go/eventsource/store/dynamodb"
	"github.com/eventsource-go/eventsource/transfer"
)

// Records returns the events the batch ev holds: the records of each
// commit item the store inserted, in position order; the store's other
// items, and changes that are not inserts (a scavenge rewriting a commit,
// a delete), are skipped.
func Records(ev events.DynamoDBEvent) ([]eventsource.Record, error) {
	var out []eventsource.Record
	for _, r := range ev.Records {
		if r.EventName != string(events.DynamoDBOperationTypeInsert) || r.Change.NewImage == nil {
			continue
		}
		item, err := Item(r.Change.NewImage)
		if err != nil {
			return nil, fmt.Errorf("lambda: stream record %s: %w", r.EventID, err)
		}
		recs, ok, err := esdynamodb.ItemRecords(item)
		if err != nil {
			return nil, fmt.Errorf("lambda: stream record %s: %w", r.EventID, err)
		}
		if ok {
			out = append(out, recs...)
		}
	}
	slices.SortStableFunc(out, func(a, b eventsource.Record) int {
		switch {
		case a.Position < b.Position:
			return -1
		case a.Position > b.Position:
			return 1
		}
		return 0
	})
	return out, nil
}

// Item converts a stream record's image to the SDK's attribute values.
func Item(image map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	out := make(map[string]types.AttributeValue, len(image))
	for k, v := range image {
		av, err := attributeValue(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		out[k] = av
	}
	return out, nil
}

func attributeValue(v events.DynamoDBAttributeValue) (types.AttributeValue, error) {
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	case events.DataTypeList:
		l := v.List()
		out := make([]types.AttributeValue, len(l))
		for i, e := range l {
			av, err := attributeValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = av
		}
		return &types.AttributeValueMemberL{Value: out}, nil
	case events.DataTypeMap:
		m, err := Item(v.Map())
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberM{Value: m}, nil
	}
	return nil, errors.New("unknown attribute type")
}

// Forwarder sends records on.
type Forwarder interface {
	Forward(ctx context.Context, recs []eventsource.Record) error
}

// ForwarderFunc is a func as a Forwarder.
type ForwarderFunc func(ctx context.Context, recs []eventsource.Record) error

// Forward implements Forwarder.
func (f ForwarderFunc) Forward(ctx context.Context, recs []eventsource.Record) error {
	return f(ctx, recs)
}

// Handler is the Lambda function's handler: the batch's records, forwarded
// in position order. An error makes Lambda retry the batch.
func Handler(f Forwarder) func(ctx context.Context, ev events.DynamoDBEvent) error {
	return func(ctx context.Context, ev events.DynamoDBEvent) error {
		recs, err := Records(ev)
		if err != nil || len(recs) == 0 {
			return err
		}
		return f.Forward(ctx, recs)
	}
}

// envelope is a record as a message body: package transfer's line (event
// ID, stream, version, type, codec, data, metadata, time, position).
func envelope(r eventsource.Record) ([]byte, error) { return json.Marshal(transfer.LineOf(r)) }

// Kinesis puts each record into a Kinesis data stream, one PutRecord at a
// time with the event's stream as partition key and each put ordered
// after the last of the same key, so a shard holds a stream's events in
// order. The data is the record's JSON line (package transfer).
type Kinesis struct {
	Client *kinesis.Client
	Stream string // the Kinesis stream's name
}

// Forward implements Forwarder.
func (k *Kinesis) Forward(ctx context.Context, recs []eventsource.Record) error {
	last := map[string]*string{} // partition key → sequence number of its last put
	for _, r := range recs {
		data, err := envelope(r)
		if err != nil {
			return err
		}
		out, err := k.Client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(k.Stream), PartitionKey: aws.String(r.StreamID),
			Data: data, SequenceNumberForOrdering: last[r.StreamID]})
		if err != nil {
			return fmt.Errorf("lambda: kinesis put %q version %d: %w", r.StreamID, r.Version, err)
		}
		last[r.StreamID] = out.SequenceNumber
	}
	return nil
}

// SNS publishes each record to a topic: the record's JSON line (package
// transfer) as the message, and the attributes a relay sets (es-event-id,
// es-stream, es-version, es-position, es-type); on a FIFO topic (its ARN
// ends in .fifo) the stream is the message group and the event ID the
// deduplication ID.
type SNS struct {
	Client   *sns.Client
	TopicARN string
}

// Forward implements Forwarder.
func (s *SNS) Forward(ctx context.Context, recs []eventsource.Record) error {
	fifo := strings.HasSuffix(s.TopicARN, ".fifo")
	for _, r := range recs {
		data, err := envelope(r)
		if err != nil {
			return err
		}
		str := func(v string) snstypes.MessageAttributeValue {
			return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
		in := &sns.PublishInput{TopicArn: aws.String(s.TopicARN), Message: aws.String(string(data)),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{
				"es-event-id": str(r.EventID), "es-stream": str(r.StreamID), "es-version": str(strconv.FormatInt(r.Version, 10)),
				"es-position": str(strconv.FormatUint(r.Position, 10)), "es-type": str(r.Type),
			}}
		if fifo {
			in.MessageGroupId, in.MessageDeduplicationId = aws.String(r.StreamID), aws.String(dedupeID(r.EventID))
		}
		if _, err := s.Client.Publish(ctx, in); err != nil {
			return fmt.Errorf("lambda: sns publish %q version %d: %w", r.StreamID, r.Version, err)
		}
	}
	return nil
}

// dedupeID is an event ID as an SNS deduplication ID (at most 128
// characters of [A-Za-z0-9] and punctuation): as it is when it fits,
// base64url of it otherwise.
func dedupeID(id string) string {
	if len(id) <= 128 && !strings.ContainsFunc(id, func(r rune) bool { return r < '!' || r > '~' }) {
		return id
	}
	s := base64.RawURLEncoding.EncodeToString([]byte(id))
	return s[:min(len(s), 128)]
}

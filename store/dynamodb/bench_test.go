package dynamodb_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
)

func benchRecords(n int) []eventsource.Record {
	out := make([]eventsource.Record, n)
	for i := range out {
		out[i] = eventsource.Record{Type: "Benchmarked", Codec: "json", Data: []byte(`{"amount":100,"note":"a typical small event"}`),
			Metadata: map[string]string{"user": "u-1"}}
	}
	return out
}

// rawItem is what a bare SDK user would write for one commit of n events:
// the same keys and a list of n small maps.
func rawItem(stream string, base, n int) map[string]types.AttributeValue {
	list := make([]types.AttributeValue, n)
	for i := range list {
		list[i] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"i": &types.AttributeValueMemberS{Value: eventsource.NewEventID()},
			"y": &types.AttributeValueMemberS{Value: "Benchmarked"},
			"c": &types.AttributeValueMemberS{Value: "json"},
			"d": &types.AttributeValueMemberB{Value: []byte(`{"amount":100,"note":"a typical small event"}`)},
			"m": &types.AttributeValueMemberB{Value: []byte("\x04user\x03u-1")},
		}}
	}
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "raw#" + stream},
		"sk": &types.AttributeValueMemberN{Value: strconv.Itoa(base)},
		"n":  &types.AttributeValueMemberN{Value: strconv.Itoa(n)},
		"r":  &types.AttributeValueMemberL{Value: list},
	}
}

func benchAppend(b *testing.B, n int) {
	s, c, table := newStore(b)
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		i, prefix := 0, eventsource.NewEventID()
		for b.Loop() {
			if _, err := s.Append(ctx, fmt.Sprintf("bench-%s-%d", prefix, i), eventsource.NoStream, benchRecords(n)); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/event")
	})
	b.Run("raw-PutItem", func(b *testing.B) {
		b.ReportAllocs()
		i, prefix := 0, eventsource.NewEventID()
		for b.Loop() {
			_, err := c.PutItem(ctx, &dynamodb.PutItemInput{
				TableName: aws.String(table), Item: rawItem(fmt.Sprintf("bench-%s-%d", prefix, i), 0, n),
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			})
			if err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/event")
	})
}

// BenchmarkAppend1 appends one event to a new stream, beside one conditional
// PutItem of the same item.
func BenchmarkAppend1(b *testing.B) { benchAppend(b, 1) }

// BenchmarkAppend1Exact appends one event at a time to a growing stream at
// the exact version of the previous append (how a repository saves),
// beside one conditional PutItem of the same item.
func BenchmarkAppend1Exact(b *testing.B) {
	s, c, table := newStore(b)
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		stream, v := "exact-"+eventsource.NewEventID(), int64(0)
		for b.Loop() {
			if _, err := s.Append(ctx, stream, eventsource.Exact(v), benchRecords(1)); err != nil {
				b.Fatal(err)
			}
			v++
		}
	})
	b.Run("raw-PutItem", func(b *testing.B) {
		b.ReportAllocs()
		stream, v := "exact-"+eventsource.NewEventID(), 0
		for b.Loop() {
			_, err := c.PutItem(ctx, &dynamodb.PutItemInput{
				TableName: aws.String(table), Item: rawItem(stream, v, 1),
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			})
			if err != nil {
				b.Fatal(err)
			}
			v++
		}
	})
}

// BenchmarkAppend25 appends 25 events to a new stream, beside one
// conditional PutItem of the same item.
func BenchmarkAppend25(b *testing.B) { benchAppend(b, 25) }

// BenchmarkReadStream10k reads a 10,000-event stream written in 100-event
// appends, beside a bare Query of the same items (no decoding).
func BenchmarkReadStream10k(b *testing.B) {
	const total, per = 10_000, 100
	s, c, table := newStore(b)
	ctx := context.Background()
	for v := 0; v < total; v += per {
		if _, err := s.Append(ctx, "read-1", eventsource.Exact(int64(v)), benchRecords(per)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for _, err := range s.ReadStream(ctx, "read-1", 1, 0) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != total {
				b.Fatalf("read %d", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*total), "µs/event")
	})
	b.Run("raw-Query", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var start map[string]types.AttributeValue
			n := 0
			for {
				out, err := c.Query(ctx, &dynamodb.QueryInput{
					TableName:                 aws.String(table),
					KeyConditionExpression:    aws.String("pk = :pk"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "s#read-1"}},
					ExclusiveStartKey:         start,
					ConsistentRead:            aws.Bool(true),
				})
				if err != nil {
					b.Fatal(err)
				}
				for _, it := range out.Items {
					n += len(it["r"].(*types.AttributeValueMemberL).Value)
				}
				if start = out.LastEvaluatedKey; start == nil {
					break
				}
			}
			if n != total {
				b.Fatalf("read %d", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*total), "µs/event")
	})
}

// BenchmarkReadAll10k catches up on a global log of 10,000 events (100
// streams, one 100-event append each), beside a bare paged Query of the
// same index partition (no decoding, no gap checks).
func BenchmarkReadAll10k(b *testing.B) {
	const streams, per = 100, 100
	s, c, table := newStore(b)
	ctx := context.Background()
	for i := 0; i < streams; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("all-%03d", i), eventsource.NoStream, benchRecords(per)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			readAllCount(b, s, streams*per)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*streams*per), "µs/event")
	})
	b.Run("raw-Query", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var start map[string]types.AttributeValue
			n := 0
			for {
				out, err := c.Query(ctx, &dynamodb.QueryInput{
					TableName:                 aws.String(table),
					IndexName:                 aws.String("log"),
					KeyConditionExpression:    aws.String("g = :g"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":g": &types.AttributeValueMemberS{Value: "log#0"}},
					ExclusiveStartKey:         start,
					Limit:                     aws.Int32(100),
				})
				if err != nil {
					b.Fatal(err)
				}
				for _, it := range out.Items {
					if r, ok := it["r"].(*types.AttributeValueMemberL); ok {
						n += len(r.Value)
					}
				}
				if start = out.LastEvaluatedKey; start == nil {
					break
				}
			}
			if n != streams*per {
				b.Fatalf("read %d", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*streams*per), "µs/event")
	})
	// With rules in the table (one stream keeps its newest 50): every page
	// also reads the flags of its streams and the ruled stream's end.
	if _, err := s.SetStreamMetadata(ctx, "all-000", eventsource.NoStream, eventsource.StreamMetadata{MaxCount: per / 2}); err != nil {
		b.Fatal(err)
	}
	b.Run("store-with-rules", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			readAllCount(b, s, streams*per-per/2)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*(streams*per-per/2)), "µs/event")
	})
}

// readAllCount reads the whole global log and checks it holds want records.
func readAllCount(b *testing.B, s eventsource.Store, want int) {
	n := 0
	for _, err := range s.ReadAll(context.Background(), 0, eventsource.Filter{}) {
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	if n != want {
		b.Fatalf("read %d records, want %d", n, want)
	}
}

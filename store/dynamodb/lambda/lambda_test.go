package lambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Admiral-Piett/goaws/app/servertest"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	esdynamo "github.com/eventsource-go/eventsource/store/dynamodb"
	"github.com/eventsource-go/eventsource/store/dynamodb/lambda"
	"github.com/eventsource-go/eventsource/transfer"
)

// streamEvent is what DynamoDB Streams would give a Lambda function for
// the items the store wrote: every item of the table (dynalite has no
// streams, so a scan stands in), as INSERT records with new images, in a
// shuffled order (a batch spans shards).
func streamEvent(t *testing.T, c *dynamodb.Client, table string) events.DynamoDBEvent {
	t.Helper()
	var ev events.DynamoDBEvent
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for i, item := range page.Items {
			ev.Records = append(ev.Records, events.DynamoDBEventRecord{EventID: fmt.Sprint(len(ev.Records), "-", i),
				EventName: string(events.DynamoDBOperationTypeInsert), Change: events.DynamoDBStreamRecord{NewImage: image(item)}})
		}
	}
	rand.Shuffle(len(ev.Records), func(i, j int) { ev.Records[i], ev.Records[j] = ev.Records[j], ev.Records[i] })
	return ev
}

func image(item map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	out := map[string]events.DynamoDBAttributeValue{}
	for k, v := range item {
		out[k] = lambdaValue(v)
	}
	return out
}

func lambdaValue(v types.AttributeValue) events.DynamoDBAttributeValue {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value)
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value)
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value)
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value)
	case *types.AttributeValueMemberNULL:
		return events.NewNullAttribute()
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value)
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value)
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			l[i] = lambdaValue(e)
		}
		return events.NewListAttribute(l)
	case *types.AttributeValueMemberM:
		return events.NewMapAttribute(image(v.Value))
	}
	panic(fmt.Sprintf("attribute %T", v))
}

func key(r eventsource.Record) string {
	return fmt.Sprintf("%s|%d|%d|%s|%s|%s|%x|%v|%d", r.StreamID, r.Version, r.Position, r.EventID, r.Type, r.Codec, r.Data, r.Metadata, r.RecordedAt.UnixNano())
}

// A store on dynalite with appends, a stream's metadata, a reservation, a
// snapshot and a second append to a stream: the handler's records are
// exactly the global log's, in order, and the store's other items are
// skipped; forwarded twice (a retried batch) to Kinesis (kinesalite), the
// shard holds every event, each stream's in order, and dropping repeated
// event IDs leaves exactly the log.
func TestStreamToKinesis(t *testing.T) {
	ctx := context.Background()
	endpoint := testenv.DynamoDB.URL(t)
	c := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	table := "es-lambda-" + strings.ReplaceAll(eventsource.NewEventID(), "-", "")[:16]
	if err := esdynamo.CreateTable(ctx, c, table, esdynamo.TableOptions{OnDemand: true, Stream: true}); err != nil {
		t.Fatal(err)
	}
	defer esdynamo.DeleteTable(ctx, c, table)
	s := esdynamo.New(c, table)
	defer s.Close()
	for i := range 40 {
		recs := []eventsource.Record{{Type: "Deposited", Codec: "json", Data: []byte(fmt.Sprintf(`{"i":%d}`, i)), Metadata: map[string]string{"teller": "7"}}}
		if i%10 == 0 {
			recs = append(recs, eventsource.Record{Type: "Blob", Codec: "gob", Data: []byte{0, 0xff, byte(i)}})
		}
		if _, err := s.Append(ctx, fmt.Sprint("account-", i%4), eventsource.Any, recs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SetStreamMetadata(ctx, "account-1", eventsource.Any, eventsource.StreamMetadata{Values: map[string]string{"owner": "ann"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve(ctx, "email", "ann@example.com", "account-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, eventsource.Snapshot{StreamID: "account-2", Version: 5, Schema: 1, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for r, err := range s.ReadAll(ctx, 1, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, key(r))
	}

	ev := streamEvent(t, c, table)
	recs, err := lambda.Records(ev)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, key(r))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the handler's records (%d) are not the log's (%d):\n%s\nwant\n%s", len(got), len(want), strings.Join(got[:min(3, len(got))], "\n"), strings.Join(want[:3], "\n"))
	}
	if len(ev.Records) <= 40 {
		t.Fatalf("only %d items in the table: the store's other items are missing from the test", len(ev.Records))
	}
	// Not an insert: skipped.
	mod := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{ev.Records[0]}}
	mod.Records[0].EventName = string(events.DynamoDBOperationTypeModify)
	if recs, err := lambda.Records(mod); err != nil || len(recs) != 0 {
		t.Fatalf("a MODIFY record gave %d records, %v", len(recs), err)
	}

	kc := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(testenv.Kinesis.URL(t)), Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	stream := "es-events-" + strings.ReplaceAll(eventsource.NewEventID(), "-", "")[:10]
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	defer kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		d, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)})
		if err == nil && d.StreamDescription.StreamStatus == kinesistypes.StreamStatusActive {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("kinesis stream not active: %v", err)
		}
	}
	handle := lambda.Handler(&lambda.Kinesis{Client: kc, Stream: stream})
	for range 2 { // a retried batch
		if err := handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	d, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
		ShardId: d.StreamDescription.Shards[0].ShardId, ShardIteratorType: kinesistypes.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var deduped []string
	versions := map[string]int64{}
	total := 0
	for iter := it.ShardIterator; iter != nil && total < 2*len(want); {
		out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Records) == 0 {
			break
		}
		for _, kr := range out.Records {
			total++
			var l transfer.Line
			if err := json.Unmarshal(kr.Data, &l); err != nil {
				t.Fatal(err)
			}
			if *kr.PartitionKey != l.Stream {
				t.Fatalf("partition key %q for stream %q", *kr.PartitionKey, l.Stream)
			}
			if seen[l.EventID] {
				continue
			}
			seen[l.EventID] = true
			if l.Version != versions[l.Stream]+1 {
				t.Fatalf("%s version %d after %d in the shard", l.Stream, l.Version, versions[l.Stream])
			}
			versions[l.Stream] = l.Version
			r := l.Record()
			r.Position, r.RecordedAt = l.Position, l.RecordedAt
			deduped = append(deduped, key(r))
		}
		iter = out.NextShardIterator
	}
	if total != 2*len(want) || strings.Join(deduped, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kinesis holds %d records, %d after dropping repeated event IDs; want %d and the log", total, len(deduped), 2*len(want))
	}
}

// Forwarded to SNS (goaws, in process) with an HTTP endpoint subscribed:
// each record arrives as its JSON line. (goaws 0.4.5 speaks SQS's query
// protocol only, which the SDK's SQS client no longer uses, so the
// subscriber is HTTP.)
func TestStreamToSNS(t *testing.T) {
	ctx := context.Background()
	srv, err := servertest.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Quit()
	bodies := make(chan []byte, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer hook.Close()
	snsc := sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("events")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("http"), Endpoint: aws.String(hook.URL)}); err != nil {
		t.Fatal(err)
	}
	recs := []eventsource.Record{
		{StreamID: "account-1", Version: 1, Position: 1, EventID: "e-1", Type: "Opened", Codec: "json", Data: []byte(`{"owner":"ann"}`), RecordedAt: time.Now().UTC()},
		{StreamID: "account-1", Version: 2, Position: 2, EventID: "e-2", Type: "Blob", Codec: "gob", Data: []byte{0, 0xff}, RecordedAt: time.Now().UTC()},
	}
	if err := (&lambda.SNS{Client: snsc, TopicARN: *topic.TopicArn}).Forward(ctx, recs); err != nil {
		t.Fatal(err)
	}
	var got []transfer.Line
	for len(got) < 2 {
		select {
		case b := <-bodies:
			var env struct{ Type, Message, SubscribeURL string } // a notification envelope, or the raw message
			if json.Unmarshal(b, &env) == nil && env.Type == "SubscriptionConfirmation" {
				if res, err := http.Get(env.SubscribeURL); err == nil {
					res.Body.Close()
				}
				continue
			}
			var l transfer.Line
			if err := json.Unmarshal(b, &l); err != nil || l.EventID == "" {
				if json.Unmarshal([]byte(env.Message), &l) != nil {
					t.Fatalf("notification %s", b)
				}
			}
			got = append(got, l)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of 2 notifications", len(got))
		}
	}
	if got[0].EventID != "e-1" || string(got[0].Data) != `{"owner":"ann"}` || got[1].EventID != "e-2" || string(got[1].DataBase64) != "\x00\xff" {
		t.Fatalf("received %+v", got)
	}
}

package dynamodb_test

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	esdynamo "github.com/eventsource-go/eventsource/store/dynamodb"
	"github.com/eventsource-go/eventsource/store/storetest"
	"github.com/eventsource-go/eventsource/storekit"
)

// client returns a client of the test server (dynalite).
func client(t testing.TB) *dynamodb.Client {
	t.Helper()
	endpoint := testenv.DynamoDB.URL(t)
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// newTable creates a table with a random name, deleted when t ends.
func newTable(t testing.TB, c *dynamodb.Client) string {
	t.Helper()
	name := "es-test-" + strings.ReplaceAll(eventsource.NewEventID(), "-", "")[:20]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := esdynamo.CreateTable(ctx, c, name, esdynamo.TableOptions{OnDemand: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := esdynamo.DeleteTable(ctx, c, name); err != nil {
			t.Error(err)
		}
	})
	return name
}

func newStore(t testing.TB, opts ...esdynamo.Option) (*esdynamo.Store, *dynamodb.Client, string) {
	t.Helper()
	c := client(t)
	table := newTable(t, c)
	s := esdynamo.New(c, table, opts...)
	t.Cleanup(func() { s.Close() })
	return s, c, table
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Features{
		Notify: true, Head: true, ListStreams: true, CommitHook: true, Reservations: true,
		Snapshots: true, DeleteStream: true, Lifecycle: true, Scavenge: true,
	}, func(t *testing.T) eventsource.Store {
		s, _, _ := newStore(t, esdynamo.WithPollInterval(100*time.Millisecond))
		return s
	})
	t.Run("LiveSubscriber", func(t *testing.T) {
		t.Parallel()
		s, _, _ := newStore(t, esdynamo.WithPollInterval(100*time.Millisecond))
		projectiontest.LiveSubscriber(t, s, projectiontest.SubscriptionOptions{CommitHook: true})
	})
}

// TestDefaultLimits: the conformance suite tests the default limits; they
// cover the portable ones, which they bound.
func TestDefaultLimits(t *testing.T) {
	if l, p := esdynamo.New(nil, "t").Limits(), eventsource.PortableLimits(); !l.Covers(p) || !p.Covers(l) {
		t.Fatalf("default limits %+v are not the portable ones %+v", l, p)
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func rec(typ string) eventsource.Record {
	return eventsource.Record{Type: typ, Codec: "json", Data: []byte(`{}`)}
}

func readAll(t *testing.T, s eventsource.Store) []eventsource.Record {
	t.Helper()
	var out []eventsource.Record
	for r, err := range s.ReadAll(ctxFor(t), 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestCreateDeleteTable(t *testing.T) {
	t.Parallel()
	c := client(t)
	ctx := ctxFor(t)
	name := "es-test-create-" + strings.ReplaceAll(eventsource.NewEventID(), "-", "")[:12]
	if err := esdynamo.CreateTable(ctx, c, name, esdynamo.TableOptions{RCU: 3, WCU: 4}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Table.TableStatus != types.TableStatusActive || len(out.Table.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("table %s, %d indexes", out.Table.TableStatus, len(out.Table.GlobalSecondaryIndexes))
	}
	if tp := out.Table.ProvisionedThroughput; aws.ToInt64(tp.ReadCapacityUnits) != 3 || aws.ToInt64(tp.WriteCapacityUnits) != 4 {
		t.Fatalf("throughput %+v", tp)
	}
	s := esdynamo.New(c, name)
	if _, err := s.Append(ctx, "t-1", eventsource.NoStream, []eventsource.Record{rec("T")}); err != nil {
		t.Fatal(err)
	}
	if err := esdynamo.CreateTable(ctx, c, name, esdynamo.TableOptions{OnDemand: true}); !errors.Is(err, esdynamo.ErrTableExists) || !strings.Contains(err.Error(), name) {
		t.Fatalf("CreateTable of an existing table = %v; want ErrTableExists naming it", err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if err := esdynamo.DeleteTable(ctx, c, name); err != nil {
		t.Fatal(err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}); !errors.As(err, &nf) {
		t.Fatalf("DescribeTable after DeleteTable: %v", err)
	}
	if err := esdynamo.DeleteTable(ctx, c, name); err == nil {
		t.Fatal("DeleteTable of a missing table succeeded")
	}
	// Calls on a missing table say how to create it.
	hint := "eventsource dynamodb create-table --name " + name
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, eventsource.ErrNotFound) || !strings.Contains(err.Error(), hint) || !strings.Contains(err.Error(), "create=true") {
			t.Errorf("%s on a missing table = %v; want ErrNotFound saying %q or create=true", what, err, hint)
		}
	}
	check("Verify", s.Verify(ctx))
	_, err = s.Append(ctx, "t-1", eventsource.NoStream, []eventsource.Record{rec("T")})
	check("Append", err)
	_, err = eventsource.ReadStreamAll(ctx, s, "t-1")
	check("ReadStream", err)
	_, err = s.Head(ctx)
	check("Head", err)
}

// allocate takes a position from the counter the way an append does, and
// never commits it: a writer that died between the two.
func allocate(t *testing.T, c *dynamodb.Client, table string) {
	t.Helper()
	_, err := c.UpdateItem(ctxFor(t), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "$position"}, "sk": &types.AttributeValueMemberN{Value: "0"}},
		UpdateExpression:          aws.String("ADD c :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGapOfADeadWriter(t *testing.T) {
	t.Parallel()
	const bound = 600 * time.Millisecond
	s, c, table := newStore(t, esdynamo.WithGapTimeout(bound))
	ctx := ctxFor(t)
	if _, err := s.Append(ctx, "gap-1", eventsource.NoStream, []eventsource.Record{rec("A")}); err != nil {
		t.Fatal(err)
	}
	allocate(t, c, table) // position 2 stays empty for good
	res, err := s.Append(ctx, "gap-1", eventsource.Exact(1), []eventsource.Record{rec("B")})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstPosition != 3 {
		t.Fatalf("second append at position %d, want 3", res.FirstPosition)
	}
	// A reader that has seen position 1 waits the bound for 2, then moves on.
	start := time.Now()
	var got []uint64
	for r, err := range s.ReadAll(ctx, 2, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Position)
	}
	waited := time.Since(start)
	if len(got) != 1 || got[0] != 3 {
		t.Fatalf("read positions %v, want [3]", got)
	}
	if waited < bound-50*time.Millisecond || waited > bound+2*time.Second {
		t.Fatalf("reader waited %v for the gap, want about %v", waited, bound)
	}
	// A gap at the end of the log is not waited for: nothing follows it.
	allocate(t, c, table)
	start = time.Now()
	if n := len(readAll(t, s)); n != 2 {
		t.Fatalf("full read: %d records, want 2", n)
	}
	if time.Since(start) > bound/2+time.Second {
		t.Fatalf("a trailing gap held the reader for %v", time.Since(start))
	}
}

func TestTooLateWriterGivesUp(t *testing.T) {
	t.Parallel()
	const bound = 400 * time.Millisecond
	s, _, _ := newStore(t, esdynamo.WithGapTimeout(bound))
	calls := 0
	ctx := storekit.WithBeforeCommit(ctxFor(t), func(context.Context) {
		if calls++; calls == 1 {
			time.Sleep(bound/2 + 50*time.Millisecond)
		}
	})
	res, err := s.Append(ctx, "late-1", eventsource.NoStream, []eventsource.Record{rec("A"), rec("B")})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || res.FirstPosition != 3 || res.LastPosition != 4 {
		t.Fatalf("hook called %d times, result %+v; want a second try at positions 3..4", calls, res)
	}
	// The positions given up were voided: a reader does not wait for them.
	start := time.Now()
	all := readAll(t, s)
	if len(all) != 2 || all[0].Position != 3 {
		t.Fatalf("read %d records from %d, want 2 from 3", len(all), all[0].Position)
	}
	if d := time.Since(start); d > bound/2 {
		t.Fatalf("reader waited %v for voided positions", d)
	}
	// A writer that is always too late fails, and leaves nothing behind.
	ctx = storekit.WithBeforeCommit(ctxFor(t), func(context.Context) { time.Sleep(bound/2 + 20*time.Millisecond) })
	if _, err := s.Append(ctx, "late-1", eventsource.Exact(2), []eventsource.Record{rec("C")}); err == nil {
		t.Fatal("an append that is always too late succeeded")
	}
	if n := len(readAll(t, s)); n != 2 {
		t.Fatalf("log holds %d records, want 2", n)
	}
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := ctxFor(t)
	big := func(n, size int) []eventsource.Record {
		out := make([]eventsource.Record, n)
		for i := range out {
			out[i] = eventsource.Record{Type: "Big", Data: make([]byte, size), Metadata: map[string]string{"k": "v"}}
		}
		return out
	}
	// Just under the store's estimate of the limit (about 407 KB of data
	// and overhead): DynamoDB must take it.
	if _, err := s.Append(ctx, "big-1", eventsource.NoStream, big(4, 101_700)); err != nil {
		t.Fatalf("an append of 4 × 101,700 bytes: %v", err)
	}
	if _, err := s.Append(ctx, "big-2", eventsource.NoStream, big(4, 101_900)); !errors.Is(err, eventsource.ErrTooLarge) {
		t.Fatalf("an append of 4 × 101,900 bytes: %v, want ErrTooLarge", err)
	}
	for _, c := range []struct {
		name string
		recs []eventsource.Record
	}{
		{"two large records", big(2, 200<<10)},
		{"many small records", big(20_000, 10)},
		{"record over the data limit", big(1, esdynamo.DefaultMaxData+1)},
	} {
		if _, err := s.Append(ctx, "big-2", eventsource.NoStream, c.recs); !errors.Is(err, eventsource.ErrTooLarge) {
			t.Fatalf("%s: %v, want ErrTooLarge", c.name, err)
		}
	}
	if n := len(readAll(t, s)); n != 4 {
		t.Fatalf("log holds %d records, want 4", n)
	}
}

// putClaim writes a claim item the way an append does before its commit:
// event ID id is meant for the commit of stream that follows version base.
func putClaim(t *testing.T, c *dynamodb.Client, table, id, stream string, base int) {
	t.Helper()
	_, err := c.PutItem(ctxFor(t), &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "e#" + id}, "sk": &types.AttributeValueMemberN{Value: "0"},
			"s": &types.AttributeValueMemberS{Value: stream}, "b": &types.AttributeValueMemberN{Value: strconv.Itoa(base)},
			"k": &types.AttributeValueMemberS{Value: "dead-writer"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func withID(id string) []eventsource.Record {
	r := rec("C")
	r.EventID = id
	return []eventsource.Record{r}
}

func TestClaims(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t)
	ctx := ctxFor(t)
	if _, err := s.Append(ctx, "claims-1", eventsource.NoStream, withID("x-0")); err != nil {
		t.Fatal(err)
	}
	// A writer claimed x-1 for claims-1 after version 0 and lost to x-0's
	// commit: its claim is dead and is taken over.
	putClaim(t, c, table, "x-1", "claims-1", 0)
	if _, err := s.Append(ctx, "claims-2", eventsource.NoStream, withID("x-1")); err != nil {
		t.Fatalf("append of an ID with a dead claim: %v", err)
	}
	// A writer claimed x-2 for claims-1 after version 1 and has not
	// committed yet (or died): x-2 may still land there, so it is refused
	// elsewhere...
	putClaim(t, c, table, "x-2", "claims-1", 1)
	if _, err := s.Append(ctx, "claims-3", eventsource.NoStream, withID("x-2")); !errors.Is(err, eventsource.ErrDuplicateEvent) {
		t.Fatalf("append of an ID claimed in flight elsewhere: %v, want ErrDuplicateEvent", err)
	}
	// ...but an append after the same version of the same stream competes
	// for the same key, so it takes the claim over.
	res, err := s.Append(ctx, "claims-1", eventsource.Exact(1), withID("x-2"))
	if err != nil || res.LastVersion != 2 {
		t.Fatalf("append of an ID claimed for the same place: %+v, %v", res, err)
	}
	// Once stored, the ID is refused everywhere but in an exact retry.
	if _, err := s.Append(ctx, "claims-3", eventsource.NoStream, withID("x-2")); !errors.Is(err, eventsource.ErrDuplicateEvent) {
		t.Fatalf("append of a stored ID: %v, want ErrDuplicateEvent", err)
	}
	if again, err := s.Append(ctx, "claims-1", eventsource.Exact(1), withID("x-2")); err != nil || again != res {
		t.Fatalf("retry: %+v, %v; want %+v", again, err, res)
	}
	if n := len(readAll(t, s)); n != 3 {
		t.Fatalf("log holds %d records, want 3", n)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	endpoint := testenv.DynamoDB.URL(t)
	ctx := ctxFor(t)
	name := "es-test-open-" + strings.ReplaceAll(eventsource.NewEventID(), "-", "")[:12]
	s, err := esdynamo.Open(ctx, "dynamodb://"+name+"?create=true&endpoint="+url.QueryEscape(endpoint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := esdynamo.DeleteTable(context.Background(), client(t), name); err != nil {
			t.Error(err)
		}
	})
	if _, err := s.Append(ctx, "open-1", eventsource.NoStream, []eventsource.Record{rec("O")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Append(ctx, "open-1", eventsource.Exact(1), []eventsource.Record{rec("O")}); !errors.Is(err, eventsource.ErrClosed) {
		t.Fatalf("append after Close: %v, want ErrClosed", err)
	}
	// Opening again finds the table and its events.
	s2, err := esdynamo.Open(ctx, "dynamodb://"+name+"?create=true&endpoint="+url.QueryEscape(endpoint))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, s2)); n != 1 {
		t.Fatalf("reopened store reads %d records, want 1", n)
	}
	for _, bad := range []string{"dynamo://x", "dynamodb://", "::"} {
		if _, err := esdynamo.Open(ctx, bad); !errors.Is(err, eventsource.ErrInvalidConfig) {
			t.Fatalf("Open(%q): %v, want ErrInvalidConfig", bad, err)
		}
	}
}

func TestCorruptItem(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t)
	ctx := ctxFor(t)
	res, err := s.Append(ctx, "corrupt-1", eventsource.NoStream, []eventsource.Record{rec("A")})
	if err != nil {
		t.Fatal(err)
	}
	// Break the stored record: drop its type and make its metadata garbage.
	_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "s#corrupt-1"}, "sk": &types.AttributeValueMemberN{Value: "0"}},
		UpdateExpression:          aws.String("REMOVE r[0].y SET r[0].m = :m"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":m": &types.AttributeValueMemberB{Value: []byte{0xff}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range s.ReadStream(ctx, "corrupt-1", 1, 0) {
		if !errors.Is(err, eventsource.ErrCorruptData) {
			t.Fatalf("ReadStream of a corrupt item: %v, want ErrCorruptData", err)
		}
	}
	for _, err := range s.ReadAll(ctx, res.FirstPosition, eventsource.Filter{}) {
		if !errors.Is(err, eventsource.ErrCorruptData) {
			t.Fatalf("ReadAll of a corrupt item: %v, want ErrCorruptData", err)
		}
	}
}

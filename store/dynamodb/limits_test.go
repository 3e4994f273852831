package dynamodb

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/storekit"
)

// sizeOf is the size DynamoDB counts for an item (AWS's "Item sizes and
// formats"): each attribute's name and value; strings and binaries by their
// bytes, numbers by about half their significant digits (exactly as
// dynalite counts them), a list or map 3 bytes and 1 per element besides
// its elements.
func sizeOf(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberN: // an integer, as dynalite counts it
		neg := strings.HasPrefix(v.Value, "-")
		whole := strings.TrimLeft(strings.TrimPrefix(v.Value, "-"), "0")
		digits := strings.TrimRight(whole, "0")
		if digits == "" {
			return 1
		}
		n := 1 + (len(digits)+1)/2
		if len(digits)%2 == 0 && (len(whole)-1)%2 == 0 {
			n++
		}
		if neg {
			n++
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		return 3 + len(v.Value) + sizeOf(v.Value)
	}
	panic(fmt.Sprintf("no size for %T", v))
}

// TestItemSizeRules checks sizeOf against the server: an item of exactly
// 400 KB by its count is accepted, one byte more is refused.
func TestItemSizeRules(t *testing.T) {
	endpoint := testenv.DynamoDB.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	table := "es-test-size-" + strings.ReplaceAll(eventsource.NewEventID(), "-", "")[:16]
	if err := CreateTable(ctx, c, table, TableOptions{OnDemand: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteTable(context.Background(), c, table) })
	item := func(pad int) map[string]types.AttributeValue {
		recs := make([]types.AttributeValue, 500)
		for i := range recs {
			recs[i] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"i": str(eventsource.NewEventID()), "y": str("T"), "d": &types.AttributeValueMemberB{Value: []byte{1, 2}},
			}}
		}
		return map[string]types.AttributeValue{
			attrPK: str("s#size"), attrSK: num(1234567), attrTime: num(time.Now().UnixNano()),
			attrRecords: &types.AttributeValueMemberL{Value: recs},
			"x":         &types.AttributeValueMemberB{Value: make([]byte, pad)},
		}
	}
	pad := maxItemSize - sizeOf(item(0))
	for _, extra := range []int{0, 1} {
		it := item(pad + extra)
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it})
		if got := err == nil; got != (extra == 0) {
			t.Fatalf("an item of %d bytes by sizeOf: %v", sizeOf(it), err)
		}
	}
}

// TestCommitFits: the commit item of any append within the store's limits
// fits one item, with the longest stream ID and the largest numbers.
func TestCommitFits(t *testing.T) {
	s := &Store{maxData: DefaultMaxData}
	l := s.Limits()
	big := &Store{maxData: math.MaxInt32}
	lb := big.Limits()
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	pairs := func(n, valueLen int) map[string]string {
		md := map[string]string{}
		for i := range n {
			md[fmt.Sprintf("%03d", i)] = long("v", valueLen)
		}
		return md
	}
	// fill adds records made by mk until the append is at the limit, then
	// pads the last one's data to reach it exactly.
	fill := func(lim eventsource.Limits, mk func() eventsource.Record) []eventsource.Record {
		var recs []eventsource.Record
		for len(recs) < lim.MaxRecordsPerAppend && eventsource.AppendSize(append(recs, mk())) <= lim.MaxAppendBytes {
			recs = append(recs, mk())
		}
		last := &recs[len(recs)-1]
		last.Data = append(last.Data, make([]byte, min(lim.MaxAppendBytes-eventsource.AppendSize(recs), lim.MaxDataBytes-len(last.Data)))...)
		return recs
	}
	n := 0
	uniqueID := func() string { n++; return fmt.Sprintf("%0128d", n) }
	cases := []struct {
		name string
		lim  eventsource.Limits
		recs []eventsource.Record
	}{
		{"smallest records", l, fill(l, func() eventsource.Record { return eventsource.Record{EventID: eventsource.NewEventID(), Type: "T"} })},
		{"longest names, most metadata pairs", l, fill(l, func() eventsource.Record {
			return eventsource.Record{EventID: uniqueID(), Type: long("t", 255), Codec: long("c", 255), Metadata: pairs(l.MaxMetadataKeys, 0)}
		})},
		{"long metadata values", l, fill(l, func() eventsource.Record {
			return eventsource.Record{EventID: uniqueID(), Type: "T", Metadata: pairs(4, l.MaxMetadataBytes/4-3)}
		})},
		{"largest data", lb, []eventsource.Record{{EventID: eventsource.NewEventID(), Type: "T", Data: make([]byte, lb.MaxDataBytes)}}},
	}
	for _, c := range cases {
		if err := storekit.ValidateAppend(long("s", 255), eventsource.Any, c.recs, c.lim); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// The longest keys: after a marker, at the largest versions.
		base := math.MaxInt64 - int64(len(c.recs))
		mark := marker{key: slot{base, slotSteps - 2}, mv: math.MaxInt64, maxCount: math.MaxInt64, snapCut: math.MaxInt64,
			ret: storekit.Retention{Cut: math.MaxInt64, MaxAge: math.MaxInt64, Since: time.Unix(0, math.MaxInt64)}}
		item := commitItem(long("s", 255), slot{base, slotSteps - 1}, math.MaxInt64, time.Unix(0, math.MaxInt64), c.recs, &mark)
		size := sizeOf(item)
		t.Logf("%s: %d records, AppendSize %d, item %d bytes (%d to spare)", c.name, len(c.recs), eventsource.AppendSize(c.recs), size, maxItemSize-size)
		if size > maxItemSize {
			t.Errorf("%s: the commit of an append within the limits takes %d bytes, more than an item's %d", c.name, size, maxItemSize)
		}
	}
}

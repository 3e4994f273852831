package dynamodb_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
	esdynamo "github.com/eventsource-go/eventsource/store/dynamodb"
)

func recsN(n int) []eventsource.Record {
	out := make([]eventsource.Record, n)
	for i := range out {
		out[i] = rec("L")
	}
	return out
}

func versionsOf(t *testing.T, s eventsource.Store, stream string) string {
	t.Helper()
	var vs []int64
	for r, err := range s.ReadStream(ctxFor(t), stream, 1, 0) {
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, r.Version)
	}
	return fmt.Sprint(vs)
}

func logVersionsOf(t *testing.T, s eventsource.Store, stream string) string {
	t.Helper()
	var vs []int64
	for _, r := range readAll(t, s) {
		if r.StreamID == stream {
			vs = append(vs, r.Version)
		}
	}
	return fmt.Sprint(vs)
}

// TestLifecycleAcrossStores: two Stores on one table (two processes). A
// rule one writes is effective in the other's reads at once, and the
// other's remembered stream ends (which let it append without a read) are
// refused by the marker, by a tombstone and after a scavenge.
func TestLifecycleAcrossStores(t *testing.T) {
	t.Parallel()
	a, c, table := newStore(t)
	b := esdynamo.New(c, table)
	ctx := ctxFor(t)
	mustAppend := func(s *esdynamo.Store, stream string, ev eventsource.ExpectedVersion, n int) eventsource.AppendResult {
		t.Helper()
		res, err := s.Append(ctx, stream, ev, recsN(n))
		if err != nil {
			t.Fatalf("Append(%s, %s): %v", stream, ev, err)
		}
		return res
	}
	mustAppend(a, "x", eventsource.NoStream, 4)
	mustAppend(a, "y", eventsource.NoStream, 2)
	if n := len(readAll(t, a)); n != 6 {
		t.Fatalf("log holds %d records", n)
	}

	// B truncates x: A's reads hide versions 1 and 2 at once.
	if _, err := b.SetStreamMetadata(ctx, "x", eventsource.NoStream, eventsource.StreamMetadata{TruncateBefore: 3}); err != nil {
		t.Fatal(err)
	}
	if got := logVersionsOf(t, a, "x"); got != "[3 4]" {
		t.Fatalf("A's global log holds versions %s of x after B truncated it, want [3 4]", got)
	}
	if got := versionsOf(t, a, "x"); got != "[3 4]" {
		t.Fatalf("A's ReadStream(x) = %s, want [3 4]", got)
	}
	// A remembers x ends at 4; B's marker took the key A's next commit
	// wanted, so A reads again and follows the marker.
	if res := mustAppend(a, "x", eventsource.Exact(4), 1); res.FirstVersion != 5 {
		t.Fatalf("A's append after B's marker: %+v", res)
	}
	if got := versionsOf(t, b, "x"); got != "[3 4 5]" {
		t.Fatalf("B's ReadStream(x) = %s, want [3 4 5]", got)
	}

	// B tombstones y: A's remembered end is refused, A's reads hide it.
	if err := b.TombstoneStream(ctx, "y", eventsource.Exact(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, "y", eventsource.Exact(2), recsN(1)); !errors.Is(err, eventsource.ErrStreamDeleted) {
		t.Fatalf("A's append to y after B's tombstone: %v, want ErrStreamDeleted", err)
	}
	if got := logVersionsOf(t, a, "y"); got != "[]" {
		t.Fatalf("A's global log holds versions %s of tombstoned y", got)
	}

	// A appended z at version 1 and remembers it; B moves on, deletes and
	// scavenges z. The scavenge keeps every key of the chain, so A's
	// append at its remembered end fails and reads the real one.
	mustAppend(a, "z", eventsource.NoStream, 1)
	mustAppend(b, "z", eventsource.Exact(1), 2)
	if err := b.DeleteStream(ctx, "z", eventsource.Exact(3)); err != nil {
		t.Fatal(err)
	}
	res, err := b.Scavenge(ctx, eventsource.ScavengeOptions{})
	if err != nil || res.Removed != 3+2+2 { // x: 1-2, y: 1-2, z: 1-3
		t.Fatalf("Scavenge = %+v, %v; want 7 removed", res, err)
	}
	var ce *eventsource.ConcurrencyError
	if _, err := a.Append(ctx, "z", eventsource.Exact(1), recsN(1)); !errors.As(err, &ce) || ce.Actual != 3 {
		t.Fatalf("A's append at its remembered end of scavenged z: %v, want a *ConcurrencyError at 3", err)
	}
	if res := mustAppend(a, "z", eventsource.NoStream, 1); res.FirstVersion != 4 {
		t.Fatalf("A's Append(NoStream) to deleted, scavenged z: %+v, want version 4", res)
	}
	if got := logVersionsOf(t, b, "z"); got != "[4]" {
		t.Fatalf("B's global log holds versions %s of z, want [4]", got)
	}
}

// TestScavengeFreesEventIDs: a scavenged record's event ID may be stored
// again; a retired but not yet scavenged one may not.
func TestScavengeFreesEventIDs(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := ctxFor(t)
	if _, err := s.Append(ctx, "ids-1", eventsource.NoStream, withID("id-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "ids-1", eventsource.Any); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "ids-2", eventsource.NoStream, withID("id-1")); !errors.Is(err, eventsource.ErrDuplicateEvent) {
		t.Fatalf("append of a retired record's ID: %v, want ErrDuplicateEvent", err)
	}
	if res, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil || res.Removed != 1 {
		t.Fatalf("Scavenge = %+v, %v", res, err)
	}
	if _, err := s.Append(ctx, "ids-2", eventsource.NoStream, withID("id-1")); err != nil {
		t.Fatalf("append of a scavenged record's ID: %v", err)
	}
}

// TestManyMarkers: markers at one version take keys after it, and the
// commit after them follows.
func TestManyMarkers(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := ctxFor(t)
	for i := 0; i < 12; i++ {
		if v, err := s.SetStreamMetadata(ctx, "many", eventsource.Exact(int64(i)), eventsource.StreamMetadata{Values: map[string]string{"i": fmt.Sprint(i)}}); err != nil || v != int64(i+1) {
			t.Fatalf("SetStreamMetadata %d: %d, %v", i, v, err)
		}
	}
	if _, err := s.Append(ctx, "many", eventsource.NoStream, recsN(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetStreamMetadata(ctx, "many", eventsource.Exact(12), eventsource.StreamMetadata{MaxCount: 2}); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Append(ctx, "many", eventsource.Exact(2), recsN(1)); err != nil || res.FirstVersion != 3 {
		t.Fatalf("append after markers: %+v, %v", res, err)
	}
	if got := versionsOf(t, s, "many"); got != "[2 3]" {
		t.Fatalf("ReadStream = %s, want [2 3]", got)
	}
	if md, v, err := s.StreamMetadata(ctx, "many"); err != nil || v != 13 || md.MaxCount != 2 {
		t.Fatalf("StreamMetadata = %+v, %d, %v", md, v, err)
	}
}

// TestDeletedSnapshotHidden: a snapshot saved by a writer that raced a
// delete (at or below the deleted version) is hidden even if it is stored.
func TestDeletedSnapshotHidden(t *testing.T) {
	t.Parallel()
	s, c, table := newStore(t)
	ctx := ctxFor(t)
	if _, err := s.Append(ctx, "snap", eventsource.NoStream, recsN(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "snap", eventsource.Exact(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, eventsource.Snapshot{StreamID: "snap", Version: 3, Schema: 1, Data: []byte("stale")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadSnapshot(ctx, "snap", 0); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("LoadSnapshot of a snapshot at the deleted version: %v, want ErrNotFound", err)
	}
	if _, err := s.Append(ctx, "snap", eventsource.NoStream, recsN(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, eventsource.Snapshot{StreamID: "snap", Version: 4, Schema: 1, Data: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadSnapshot(ctx, "snap", 0); err != nil || string(got.Data) != "new" {
		t.Fatalf("LoadSnapshot after the stream continued: %+v, %v", got, err)
	}
	// Scavenge deletes the stale item.
	if _, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := c.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "n#snap"}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil || len(out.Items) != 1 {
		t.Fatalf("snapshot items after Scavenge: %d, %v; want 1 (version 4)", len(out.Items), err)
	}
}

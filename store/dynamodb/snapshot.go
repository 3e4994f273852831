package dynamodb

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// Snapshots live in the store's table, one item per stream and version:
// partition key "n#" + stream, sort key the version. They are not in the
// global log index (no log attributes), and a snapshot is one item, so its
// data is bound by the item size like an append (storekit.ValidateSnapshot
// against Limits). DeleteStream and TombstoneStream remove a stream's
// snapshots atomically in effect: their marker records up to which version
// snapshots are deleted, and LoadSnapshot, which reads the stream's chain
// end beside the snapshot, hides those at once; the items themselves are
// deleted right after the marker (and again by Scavenge, should that fail).
func snapshotKey(stream string) string { return "n#" + stream }

const (
	attrSnapData   = "d"  // snapshot data (B)
	attrSnapSchema = "sv" // snapshot schema version (N)
	attrSnapAt     = "t"  // recorded at, Unix nanoseconds (N)
	attrSnapPos    = "sp" // position of the last event the state includes (N)
)

// SaveSnapshot implements eventsource.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventsource.Snapshot) error {
	if err := storekit.ValidateSnapshot(snap, s.Limits()); err != nil {
		return err
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	data := snap.Data
	if data == nil {
		data = []byte{}
	}
	item := key(snapshotKey(snap.StreamID), snap.Version)
	item[attrSnapData] = &types.AttributeValueMemberB{Value: data}
	item[attrSnapSchema] = num(snap.Schema)
	item[attrSnapAt] = num(time.Now().UnixNano())
	item[attrSnapPos] = num(snap.Position)
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item})
	if err != nil {
		return s.wrap(err, "save snapshot of %q at %d", snap.StreamID, snap.Version)
	}
	return nil
}

// LoadSnapshot implements eventsource.SnapshotStore with one strongly
// consistent Query, newest first, beside a read of the stream's chain end
// (and its latest marker, for a stream that has one) that tells whether a
// delete removed the snapshot.
func (s *Store) LoadSnapshot(ctx context.Context, stream string, atMost int64) (eventsource.Snapshot, error) {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return eventsource.Snapshot{}, err
	}
	if err := s.check(ctx); err != nil {
		return eventsource.Snapshot{}, err
	}
	cond := "pk = :pk"
	vals := map[string]types.AttributeValue{":pk": str(snapshotKey(stream))}
	if atMost > 0 {
		cond += " AND sk <= :sk"
		vals[":sk"] = num(atMost)
	}
	type lifecycle struct {
		st  state
		err error
	}
	deleted := make(chan lifecycle, 1)
	go func() {
		st, err := s.state(ctx, stream, false)
		deleted <- lifecycle{st, err}
	}()
	out, err := s.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeValues: vals,
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
		ConsistentRead:            aws.Bool(true),
	})
	lc := <-deleted
	if err != nil {
		return eventsource.Snapshot{}, s.wrap(err, "load snapshot of %q", stream)
	}
	if lc.err != nil {
		return eventsource.Snapshot{}, lc.err
	}
	if len(out.Items) == 0 {
		return eventsource.Snapshot{}, storekit.NoSnapshot(stream, atMost)
	}
	item := out.Items[0]
	v, ok1 := getN(item, attrSK)
	schema, ok2 := getN(item, attrSnapSchema)
	at, ok3 := getN(item, attrSnapAt)
	pos, _ := getN(item, attrSnapPos)
	data, ok4 := item[attrSnapData].(*types.AttributeValueMemberB)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return eventsource.Snapshot{}, fmt.Errorf("%w: snapshot of %q: malformed item", eventsource.ErrCorruptData, stream)
	}
	if m := lc.st.mark; m != nil && v <= m.snapCut {
		// Deleted with the stream (and so is every older one).
		return eventsource.Snapshot{}, storekit.NoSnapshot(stream, atMost)
	}
	return eventsource.Snapshot{StreamID: stream, Version: v, Position: uint64(pos), Schema: int(schema), Data: data.Value, RecordedAt: time.Unix(0, at).UTC()}, nil
}

var _ eventsource.SnapshotStore = (*Store)(nil)

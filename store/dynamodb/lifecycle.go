package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// Stream lifecycle (eventsource.StreamLifecycle). A metadata write, a
// soft delete and a tombstone are each one conditional PutItem of a marker
// in the stream's chain, at the key the next commit would take: see the
// package documentation for why that makes them atomic with appends.

// state is the end of a stream's chain: the key its next item takes, the
// stream's version, and its latest marker, which every commit after the
// marker copies (all but the metadata document), so one read of the last
// item tells it all.
type state struct {
	next slot
	head int64
	mark *marker // nil: the stream never had a lifecycle write
}

// marker is a decoded marker item, or the copy of one a commit carries.
type marker struct {
	key      slot
	mv       int64              // the metadata version it wrote
	ret      storekit.Retention // as written, before MaxCount's cut moves with the head
	maxCount int64
	snapCut  int64                      // snapshots at or below this version are deleted
	md       eventsource.StreamMetadata // only when read with the document
}

// retention is the stream's retention at its head: the marker's, with
// MaxCount's window cut at the head (the cut each append would have
// written: heads only grow, so the latest is the highest).
func (st *state) retention() storekit.Retention {
	if st.mark == nil {
		return storekit.Retention{}
	}
	r := st.mark.ret
	if mc := st.mark.maxCount; mc > 0 && !r.Tombstoned() {
		r.Cut = max(r.Cut, st.head-mc+1)
	}
	return r
}

// nextMarker is the marker a write of md at the stream's head makes.
func (st *state) nextMarker(md eventsource.StreamMetadata, tombstone bool, snapCut int64) marker {
	m := marker{md: md, maxCount: md.MaxCount, snapCut: snapCut}
	if st.mark != nil {
		m.mv = st.mark.mv
		m.snapCut = max(m.snapCut, st.mark.snapCut)
	}
	m.mv++
	m.ret = st.retention().Next(md, st.head, tombstone, time.Now())
	if tombstone {
		m.md, m.maxCount = eventsource.StreamMetadata{}, 0
	}
	return m
}

// linkAttrs are what a read of the chain's end needs (not the records, not
// the metadata document).
const linkAttrs = "sk, n, lm, mv, rc, ra, rs, mc, dv"

// state reads the end of stream's chain: one consistent Query of its last
// item. doc also reads the metadata document: from the last item when it is
// the latest marker, else with a GetItem of the marker.
func (s *Store) state(ctx context.Context, stream string, doc bool) (state, error) {
	proj := linkAttrs
	if doc {
		proj += ", md"
	}
	out, err := s.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(streamKey(stream))},
		ProjectionExpression:      aws.String(proj),
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return state{}, s.wrap(err, "read the end of stream %q", stream)
	}
	if len(out.Items) == 0 {
		return state{}, nil
	}
	item := out.Items[0]
	k, ok := getSlot(item, attrSK)
	if !ok {
		return state{}, fmt.Errorf("%w: stream %q: malformed chain item", eventsource.ErrCorruptData, stream)
	}
	n, isCommit := getN(item, attrCount)
	if !isCommit {
		m, err := decodeMarker(stream, k, item)
		if err != nil {
			return state{}, err
		}
		return state{next: slot{k.v, k.j + 1}, head: k.v, mark: &m}, nil
	}
	if n < 1 {
		return state{}, fmt.Errorf("%w: stream %q: malformed commit item", eventsource.ErrCorruptData, stream)
	}
	st := state{next: slot{v: k.v + n}, head: k.v + n}
	if lm, ok := getSlot(item, attrLastMarker); ok {
		m, err := decodeMarker(stream, lm, item)
		if err == nil && doc {
			m.md, err = s.metadataDoc(ctx, stream, lm)
		}
		if err != nil {
			return state{}, err
		}
		st.mark = &m
	}
	return st, nil
}

// metadataDoc reads the metadata document of the marker at key k.
func (s *Store) metadataDoc(ctx context.Context, stream string, k slot) (eventsource.StreamMetadata, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:            aws.String(s.table),
		Key:                  map[string]types.AttributeValue{attrPK: str(streamKey(stream)), attrSK: k.attr()},
		ProjectionExpression: aws.String("mv, md"),
		ConsistentRead:       aws.Bool(true),
	})
	if err != nil {
		return eventsource.StreamMetadata{}, s.wrap(err, "read the metadata of stream %q", stream)
	}
	if _, ok := out.Item[attrMetaVersion]; !ok {
		return eventsource.StreamMetadata{}, fmt.Errorf("%w: stream %q: its latest marker (%s) is missing", eventsource.ErrCorruptData, stream, k)
	}
	d, _ := out.Item[attrMetaDoc].(*types.AttributeValueMemberB)
	if d == nil {
		return eventsource.StreamMetadata{}, nil
	}
	return storekit.DecodeStreamMetadata(stream, d.Value)
}

func decodeMarker(stream string, k slot, item map[string]types.AttributeValue) (marker, error) {
	m := marker{key: k}
	var ok1, ok2 bool
	m.mv, ok1 = getN(item, attrMetaVersion)
	m.ret.Cut, ok2 = getN(item, attrCut)
	age, _ := getN(item, attrMaxAge)
	m.ret.MaxAge = time.Duration(age)
	if since, ok := getN(item, attrSince); ok {
		m.ret.Since = time.Unix(0, since).UTC()
	}
	m.maxCount, _ = getN(item, attrMaxCount)
	m.snapCut, _ = getN(item, attrSnapCut)
	if !ok1 || !ok2 {
		return marker{}, fmt.Errorf("%w: stream %q: malformed marker at %s", eventsource.ErrCorruptData, stream, k)
	}
	if d, ok := item[attrMetaDoc].(*types.AttributeValueMemberB); ok {
		md, err := storekit.DecodeStreamMetadata(stream, d.Value)
		if err != nil {
			return marker{}, err
		}
		m.md = md
	}
	return m, nil
}

func markerItem(stream string, m marker) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{attrPK: str(streamKey(stream)), attrSK: m.key.attr()}
	m.copyTo(item)
	if !m.md.IsZero() {
		b, _ := storekit.EncodeStreamMetadata(m.md) // validated before
		item[attrMetaDoc] = &types.AttributeValueMemberB{Value: b}
	}
	return item
}

// copyTo sets the marker's rule attributes on item (a marker, or a commit
// after it).
func (m *marker) copyTo(item map[string]types.AttributeValue) {
	item[attrMetaVersion] = num(m.mv)
	item[attrCut] = num(m.ret.Cut)
	if m.ret.MaxAge > 0 {
		item[attrMaxAge] = num(int64(m.ret.MaxAge))
	}
	if !m.ret.Since.IsZero() {
		item[attrSince] = num(m.ret.Since.UnixNano())
	}
	if m.maxCount > 0 {
		item[attrMaxCount] = num(m.maxCount)
	}
	if m.snapCut > 0 {
		item[attrSnapCut] = num(m.snapCut)
	}
}

// lifecycle writes a marker at the end of stream's chain: decide, given the
// state (read with the metadata document), returns what to write or why
// not. When another write takes the key first, it reads again and decides
// again, until it lands or ctx ends.
func (s *Store) lifecycle(ctx context.Context, stream string, decide func(st *state) (marker, error)) (marker, error) {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return marker{}, err
	}
	for attempt := 0; ; attempt++ {
		if err := s.check(ctx); err != nil {
			return marker{}, err
		}
		st, err := s.state(ctx, stream, true)
		if err != nil {
			return marker{}, err
		}
		if st.retention().Tombstoned() {
			return marker{}, storekit.Tombstoned(stream)
		}
		m, err := decide(&st)
		if err != nil {
			return marker{}, err
		}
		if m.key = st.next; m.key.j >= slotSteps-1 {
			return marker{}, fmt.Errorf("dynamodb: stream %q: too many lifecycle writes at version %d", stream, st.head)
		}
		if st.mark == nil {
			if err := s.flag(ctx, stream); err != nil {
				return marker{}, err
			}
		}
		_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:           aws.String(s.table),
			Item:                markerItem(stream, m),
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		switch {
		case err == nil:
			if m.ret.Tombstoned() {
				s.heads.Drop(stream)
			} else {
				rules := m
				rules.md = eventsource.StreamMetadata{}
				s.heads.Put(stream, state{next: slot{m.key.v, m.key.j + 1}, head: st.head, mark: &rules})
			}
			return m, nil
		case isConditionFailed(err):
			s.heads.Drop(stream)
			if attempt >= 2 {
				if err := storekit.Sleep(ctx, jitter(backoff(attempt-2))); err != nil {
					return marker{}, err
				}
			}
		default:
			return marker{}, s.wrap(err, "write the lifecycle of stream %q (outcome unknown)", stream)
		}
	}
}

// flag records, before a stream's first marker, that the table and the
// stream have lifecycle rules: ReadAll looks up the rules of the streams
// it reads only then. Both items are written once and never removed.
func (s *Store) flag(ctx context.Context, stream string) error {
	keys := []string{flagKey(stream)}
	if !s.ruled.Load() {
		keys = append(keys, lifecycleKey)
	}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			_, errs[i] = s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: key(k, 0)})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return s.wrap(err, "flag the lifecycle of stream %q", stream)
	}
	s.ruled.Store(true)
	return nil
}

// DeleteStream implements eventsource.StreamDeleter: a soft delete, one
// marker (see eventsource.StreamLifecycle). Its snapshots are hidden at
// once (the marker says up to which version) and then deleted.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected eventsource.ExpectedVersion) error {
	if err := storekit.ValidateExpected(expected); err != nil {
		return err
	}
	m, err := s.lifecycle(ctx, stream, func(st *state) (marker, error) {
		if err := st.retention().CheckDelete(stream, expected, st.head); err != nil {
			return marker{}, err
		}
		var md eventsource.StreamMetadata
		if st.mark != nil {
			md = st.mark.md
		}
		return st.nextMarker(storekit.SoftDelete(md, st.head), false, st.head), nil
	})
	if err == nil {
		s.deleteSnapshots(ctx, stream, m.snapCut)
	}
	return err
}

// TombstoneStream implements eventsource.StreamLifecycle: one marker that
// no item can ever follow.
func (s *Store) TombstoneStream(ctx context.Context, stream string, expected eventsource.ExpectedVersion) error {
	if err := storekit.ValidateExpected(expected); err != nil {
		return err
	}
	m, err := s.lifecycle(ctx, stream, func(st *state) (marker, error) {
		if err := st.retention().CheckTombstone(stream, expected, st.head); err != nil {
			return marker{}, err
		}
		return st.nextMarker(eventsource.StreamMetadata{}, true, math.MaxInt64), nil
	})
	if err == nil {
		s.deleteSnapshots(ctx, stream, m.snapCut)
	}
	return err
}

// StreamMetadata implements eventsource.StreamLifecycle: a consistent
// Query of the chain's end and, unless that is the latest marker, a
// GetItem of it.
func (s *Store) StreamMetadata(ctx context.Context, stream string) (eventsource.StreamMetadata, int64, error) {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	if err := s.check(ctx); err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	st, err := s.state(ctx, stream, true)
	switch {
	case err != nil:
		return eventsource.StreamMetadata{}, 0, err
	case st.mark == nil:
		return eventsource.StreamMetadata{}, 0, nil
	case st.mark.ret.Tombstoned():
		return eventsource.StreamMetadata{}, 0, storekit.Tombstoned(stream)
	}
	return st.mark.md, st.mark.mv, nil
}

// SetStreamMetadata implements eventsource.StreamLifecycle: one marker.
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, expected eventsource.ExpectedVersion, md eventsource.StreamMetadata) (int64, error) {
	if err := storekit.ValidateExpected(expected); err != nil {
		return 0, err
	}
	if err := storekit.ValidateStreamMetadata(stream, md); err != nil {
		return 0, err
	}
	m, err := s.lifecycle(ctx, stream, func(st *state) (marker, error) {
		var mv int64
		if st.mark != nil {
			mv = st.mark.mv
		}
		if err := storekit.CheckMetadataVersion(stream, expected, mv); err != nil {
			return marker{}, err
		}
		return st.nextMarker(md, false, 0), nil
	})
	return m.mv, err
}

// deleteSnapshots deletes the stream's snapshots up to version upTo. They
// are hidden already (LoadSnapshot reads the marker), so a failure only
// leaves them for Scavenge.
func (s *Store) deleteSnapshots(ctx context.Context, stream string, upTo int64) {
	if _, err := s.dropSnapshots(ctx, stream, upTo); err != nil {
		s.log.Warn("dynamodb: could not delete the snapshots of a deleted stream; Scavenge will", "stream", stream, "err", err)
	}
}

func (s *Store) dropSnapshots(ctx context.Context, stream string, upTo int64) (int, error) {
	if upTo <= 0 {
		return 0, nil
	}
	var keys []map[string]types.AttributeValue
	var startKey map[string]types.AttributeValue
	for {
		out, err := s.client.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			KeyConditionExpression:    aws.String("pk = :pk AND sk <= :sk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(snapshotKey(stream)), ":sk": num(upTo)},
			ProjectionExpression:      aws.String("pk, sk"),
			ExclusiveStartKey:         startKey,
			ConsistentRead:            aws.Bool(true),
		})
		if err != nil {
			return 0, s.wrap(err, "list the snapshots of %q", stream)
		}
		keys = append(keys, out.Items...)
		if startKey = out.LastEvaluatedKey; startKey == nil {
			break
		}
	}
	return len(keys), s.batchDelete(ctx, keys)
}

// batchDelete deletes items by key, 25 to a BatchWriteItem, retrying what
// DynamoDB leaves unprocessed.
func (s *Store) batchDelete(ctx context.Context, keys []map[string]types.AttributeValue) error {
	for start := 0; start < len(keys); start += 25 {
		var reqs []types.WriteRequest
		for _, k := range keys[start:min(start+25, len(keys))] {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}})
		}
		req := map[string][]types.WriteRequest{s.table: reqs}
		for tries := 0; len(req[s.table]) > 0; tries++ {
			if tries > 0 {
				if err := storekit.Sleep(ctx, backoff(tries)); err != nil {
					return err
				}
			}
			out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
			if err != nil {
				return s.wrap(err, "delete %d items", len(req[s.table]))
			}
			req = out.UnprocessedItems
		}
	}
	return nil
}

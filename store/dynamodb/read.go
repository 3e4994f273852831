package dynamodb

import (
	"context"
	"fmt"
	"iter"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// pageItems is how many commit items a read fetches at once (DynamoDB also
// stops a page at 1 MB).
const pageItems = 100

// ReadStream implements eventsource.Store. It queries the stream's commits
// in version order, a page at a time; a commit that starts before from but
// ends at or after it is found with one extra query.
func (s *Store) ReadStream(ctx context.Context, stream string, from, to int64) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		fail := func(err error) { yield(eventsource.Record{}, err) }
		if err := eventsource.ValidateStreamID(stream); err != nil {
			fail(err)
			return
		}
		if err := s.check(ctx); err != nil {
			fail(err)
			return
		}
		if from < 1 {
			from = 1
		}
		if to > 0 && to < from {
			return
		}
		start, err := s.commitHolding(ctx, stream, from)
		if err != nil {
			fail(err)
			return
		}
		if err := s.readCommits(ctx, stream, start, from, to, yield); err != nil {
			fail(err)
		}
	}
}

// commitHolding returns the sort key (the version before its first) of the
// stream's commit that holds version from: the commit that follows a
// version < from. It is 0 for from 1, or when no such commit is stored.
func (s *Store) commitHolding(ctx context.Context, stream string, from int64) (int64, error) {
	if from <= 1 {
		return 0, nil
	}
	out, err := s.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk AND sk <= :sk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(streamKey(stream)), ":sk": num(from - 1)},
		ProjectionExpression:      aws.String("sk"),
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return 0, s.wrap(err, "read stream %q", stream)
	}
	if len(out.Items) == 0 {
		return 0, nil
	}
	start, _ := getN(out.Items[0], attrSK)
	return start, nil
}

// readCommits queries the stream's commits from sort key start on (below to
// when to > 0), a page at a time, and yields their records within
// [from, to]. It returns the error that ended the read, for the caller to
// yield; a record that cannot be decoded is yielded there and ends the read.
func (s *Store) readCommits(ctx context.Context, stream string, start, from, to int64, yield func(eventsource.Record, error) bool) error {
	cond := "pk = :pk AND sk >= :lo"
	vals := map[string]types.AttributeValue{":pk": str(streamKey(stream)), ":lo": num(start)}
	if to > 0 {
		cond = "pk = :pk AND sk BETWEEN :lo AND :hi"
		vals[":hi"] = num(to - 1)
	}
	var startKey map[string]types.AttributeValue
	for {
		if err := s.check(ctx); err != nil {
			return err
		}
		out, err := s.client.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			KeyConditionExpression:    aws.String(cond),
			ExpressionAttributeValues: vals,
			ExclusiveStartKey:         startKey,
			Limit:                     aws.Int32(pageItems),
			ConsistentRead:            aws.Bool(true),
		})
		if err != nil {
			return s.wrap(err, "read stream %q", stream)
		}
		more, err := yieldCommits(stream, out.Items, from, to, yield)
		if err != nil || !more {
			return err
		}
		if out.LastEvaluatedKey == nil {
			return nil
		}
		startKey = out.LastEvaluatedKey
	}
}

// yieldCommits yields the records of the commit items within [from, to]
// (to <= 0: no end). more is false once past to, or when a record was
// yielded with its error or yield says stop.
func yieldCommits(stream string, items []map[string]types.AttributeValue, from, to int64, yield func(eventsource.Record, error) bool) (more bool, err error) {
	for _, item := range items {
		c, err := decodeCommit(item)
		if err != nil {
			return false, fmt.Errorf("%w: stream %q: %v", eventsource.ErrCorruptData, stream, err)
		}
		for i := 0; i < c.n; i++ {
			v := c.base + int64(i) + 1
			if v < from {
				continue
			}
			if to > 0 && v > to {
				return false, nil
			}
			r, err := c.record(i)
			if !yield(r, err) || err != nil {
				return false, nil
			}
		}
	}
	return true, nil
}

// ReadAll implements eventsource.Store. It reads the global log index in
// position order; see the package documentation for how it treats a
// missing position (a gap).
func (s *Store) ReadAll(ctx context.Context, from uint64, f eventsource.Filter) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		if from < 1 {
			from = 1
		}
		r := &logReader{s: s, ctx: ctx, next: from, filter: &f, yield: yield}
		if err := r.run(); err != nil {
			yield(eventsource.Record{}, err)
		}
	}
}

type logReader struct {
	s      *Store
	ctx    context.Context
	next   uint64 // the next position to yield
	filter *eventsource.Filter
	yield  func(eventsource.Record, error) bool
	done   bool // the consumer stopped

	gapAt    uint64 // the position the current gap starts at
	gapSince time.Time
}

func (r *logReader) run() error {
	resume := true
	for !r.done {
		if err := r.s.check(r.ctx); err != nil {
			return err
		}
		if resume {
			// A commit that began before next may still hold it (the
			// first read, or a gap just filled).
			c, ok, err := r.covering(r.next)
			if err != nil {
				return err
			}
			if ok {
				if err := r.emit(&c); err != nil {
					return err
				}
			}
			resume = false
			continue
		}
		items, err := r.forward(r.next)
		if err != nil || len(items) == 0 {
			return err
		}
		for _, item := range items {
			c, err := decodeCommit(item)
			if err != nil {
				return fmt.Errorf("%w: global log item: %v", eventsource.ErrCorruptData, err)
			}
			if c.first+uint64(c.n) <= r.next {
				continue
			}
			if c.first > r.next {
				filled, err := r.waitGap()
				if err != nil {
					return err
				}
				if filled {
					resume = true
					break
				}
				r.s.log.Warn("dynamodb: skipped positions that stayed empty", "from", r.next, "to", c.first-1, "waited", r.s.gapTimeout)
				r.next = c.first
			}
			if err := r.emit(&c); err != nil || r.done {
				return err
			}
		}
	}
	return nil
}

// emit yields c's records from position next on and moves next past c.
func (r *logReader) emit(c *commit) error {
	end := c.first + uint64(c.n)
	if end <= r.next {
		return nil
	}
	if !c.void {
		for i := int(r.next - c.first); i < c.n; i++ {
			rec, err := c.record(i)
			if err != nil {
				return err
			}
			if r.filter.Match(&rec) && !r.yield(rec, nil) {
				r.done = true
				return nil
			}
		}
	}
	r.next = end
	return nil
}

func (r *logReader) query(bucket uint64, cond string, pos uint64, forward bool, limit int32) ([]map[string]types.AttributeValue, error) {
	out, err := r.s.client.Query(r.ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(r.s.table),
		IndexName:                 aws.String(logIndex),
		KeyConditionExpression:    aws.String("g = :g AND " + cond),
		ExpressionAttributeValues: map[string]types.AttributeValue{":g": str(logKey(bucket * bucketSize)), ":p": num(pos)},
		ScanIndexForward:          aws.Bool(forward),
		Limit:                     aws.Int32(limit),
	})
	if err != nil {
		return nil, r.s.wrap(err, "read the global log at position %d", pos)
	}
	return out.Items, nil
}

// covering returns the commit or void holding position pos, if it is
// visible: the last item starting at or before pos, in pos's bucket or, if
// that has none, in the one before (a commit is shorter than a bucket).
func (r *logReader) covering(pos uint64) (commit, bool, error) {
	b := pos / bucketSize
	items, err := r.query(b, "p <= :p", pos, false, 1)
	if err == nil && len(items) == 0 && b > 0 {
		items, err = r.query(b-1, "p <= :p", pos, false, 1)
	}
	if err != nil || len(items) == 0 {
		return commit{}, false, err
	}
	c, err := decodeCommit(items[0])
	if err != nil {
		return commit{}, false, fmt.Errorf("%w: global log item: %v", eventsource.ErrCorruptData, err)
	}
	return c, c.first <= pos && pos < c.first+uint64(c.n), nil
}

// forward returns the next page of items starting at or after pos, looking
// past empty buckets up to the counter's.
func (r *logReader) forward(pos uint64) ([]map[string]types.AttributeValue, error) {
	b := pos / bucketSize
	items, err := r.query(b, "p >= :p", pos, true, pageItems)
	if err != nil || len(items) > 0 {
		return items, err
	}
	head, err := r.s.counter(r.ctx)
	if err != nil || head < pos {
		return nil, err
	}
	for b++; b <= head/bucketSize; b++ {
		items, err := r.query(b, "p >= :p", pos, true, pageItems)
		if err != nil || len(items) > 0 {
			return items, err
		}
	}
	return nil, nil
}

// waitGap waits for position next to become visible (a commit or a void),
// up to the gap timeout counted from when this reader first saw the gap.
// filled is false when the timeout passed and the gap may be skipped: a
// writer gives up a commit whose positions are older than half the timeout.
func (r *logReader) waitGap() (filled bool, err error) {
	if r.gapAt != r.next || r.gapSince.IsZero() {
		r.gapAt, r.gapSince = r.next, time.Now()
	}
	for delay := 2 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		_, ok, err := r.covering(r.next)
		if err != nil || ok {
			return ok, err
		}
		left := r.s.gapTimeout - time.Since(r.gapSince)
		if left <= 0 {
			return false, nil
		}
		if err := storekit.Sleep(r.ctx, min(delay, left)); err != nil {
			return false, err
		}
	}
}

// counter returns the last allocated position (0 before the first append).
func (s *Store) counter(ctx context.Context) (uint64, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(counterKey, 0), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, s.wrap(err, "read the position counter")
	}
	c, _ := getN(out.Item, attrCounter)
	return uint64(max(c, 0)), nil
}

// Head implements eventsource.HeadReader: the last position of the newest
// commit visible in the global log index. Commits in flight (allocated
// positions not yet written) are not counted.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	c, err := s.counter(ctx)
	if err != nil || c == 0 {
		return 0, err
	}
	for b := int64(c / bucketSize); b >= 0; b-- {
		var startKey map[string]types.AttributeValue
		for {
			out, err := s.client.Query(ctx, &dynamodb.QueryInput{
				TableName:                 aws.String(s.table),
				IndexName:                 aws.String(logIndex),
				KeyConditionExpression:    aws.String("g = :g"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":g": str(logKey(uint64(b) * bucketSize))},
				ProjectionExpression:      aws.String("pk, p, n"),
				ScanIndexForward:          aws.Bool(false),
				ExclusiveStartKey:         startKey,
				Limit:                     aws.Int32(pageItems),
			})
			if err != nil {
				return 0, s.wrap(err, "read the head of the global log")
			}
			for _, item := range out.Items {
				if pk, _ := getS(item, attrPK); strings.HasPrefix(pk, "s#") {
					p, _ := getN(item, attrPos)
					n, _ := getN(item, attrCount)
					return uint64(p + n - 1), nil
				}
			}
			if out.LastEvaluatedKey == nil {
				break
			}
			startKey = out.LastEvaluatedKey
		}
	}
	return 0, nil
}

// ListStreams implements eventsource.StreamLister with a Scan of the whole
// table (its cost grows with the table, not with the answer) that keeps one
// entry per stream in memory before sorting them.
func (s *Store) ListStreams(ctx context.Context, prefix string) iter.Seq2[eventsource.StreamInfo, error] {
	return func(yield func(eventsource.StreamInfo, error) bool) {
		if err := s.check(ctx); err != nil {
			yield(eventsource.StreamInfo{}, err)
			return
		}
		versions := map[string]int64{}
		var startKey map[string]types.AttributeValue
		for {
			out, err := s.client.Scan(ctx, &dynamodb.ScanInput{
				TableName:                 aws.String(s.table),
				FilterExpression:          aws.String("begins_with(pk, :p)"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":p": str(streamKey(prefix))},
				ProjectionExpression:      aws.String("pk, sk, n"),
				ExclusiveStartKey:         startKey,
				ConsistentRead:            aws.Bool(true),
			})
			if err != nil {
				yield(eventsource.StreamInfo{}, s.wrap(err, "list streams"))
				return
			}
			for _, item := range out.Items {
				pk, _ := getS(item, attrPK)
				base, _ := getN(item, attrSK)
				n, _ := getN(item, attrCount)
				if id := strings.TrimPrefix(pk, "s#"); base+n > versions[id] {
					versions[id] = base + n
				}
			}
			if out.LastEvaluatedKey == nil {
				break
			}
			startKey = out.LastEvaluatedKey
		}
		infos := make([]eventsource.StreamInfo, 0, len(versions))
		for id, v := range versions {
			infos = append(infos, eventsource.StreamInfo{StreamID: id, Version: v})
		}
		sort.Slice(infos, func(i, j int) bool { return infos[i].StreamID < infos[j].StreamID })
		for _, info := range infos {
			if !yield(info, nil) {
				return
			}
		}
	}
}

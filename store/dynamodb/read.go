package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"
	"strings"
	"sync"
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

// ReadStream implements eventsource.Store. It reads the end of the stream's
// chain (its state: a tombstone, the retention) while it queries the first
// page of commits, in version order; a commit that starts before from but
// ends at or after it is found with one extra query. A stream with rules is
// then read from its cut up to the head that state read saw, leaving out
// what the rules retire at the time of the read.
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
		type page struct {
			start slot
			out   *dynamodb.QueryOutput
			err   error
		}
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		first := make(chan page, 1)
		go func(from, to int64) {
			start, err := s.commitHolding(pctx, stream, from)
			var out *dynamodb.QueryOutput
			if err == nil {
				out, err = s.chainPage(pctx, stream, start, to, nil)
			}
			first <- page{start, out, err}
		}(from, to)
		st, err := s.state(ctx, stream, false)
		if err != nil {
			fail(err)
			return
		}
		ret := st.retention()
		if ret.Tombstoned() {
			fail(storekit.Tombstoned(stream))
			return
		}
		var visible func(int64, time.Time) bool
		if !ret.IsZero() {
			now := time.Now()
			visible = func(v int64, at time.Time) bool { return ret.Visible(v, at, now) }
			if to <= 0 || to > st.head {
				to = st.head
			}
			if ret.Cut > from {
				// The first page starts below the cut: start again there.
				cancel()
				if from = ret.Cut; from > to {
					return
				}
				start, err := s.commitHolding(ctx, stream, from)
				if err == nil {
					err = s.readCommits(ctx, stream, start, from, to, nil, visible, yield)
				}
				if err != nil {
					fail(err)
				}
				return
			}
			if from > to {
				return
			}
		}
		p := <-first
		if p.err == nil && visible != nil && !reaches(p.out, st.head) {
			// The page was read before commits the state saw: the cut
			// may retire all it holds. Read it again.
			p.out = nil
		}
		if p.err == nil {
			p.err = s.readCommits(ctx, stream, p.start, from, to, p.out, visible, yield)
		}
		if p.err != nil {
			fail(p.err)
		}
	}
}

// reaches reports whether a page of the chain shows it up to version head
// (or is followed by pages, read later).
func reaches(out *dynamodb.QueryOutput, head int64) bool {
	if out.LastEvaluatedKey != nil {
		return true
	}
	for _, item := range out.Items {
		k, _ := getSlot(item, attrSK)
		n, _ := getN(item, attrCount)
		if k.v+n >= head {
			return true
		}
	}
	return false
}

// readRange reads versions from..to of stream as stored (no rules; a
// scavenged record is not there), for an idempotent retry's check.
func (s *Store) readRange(ctx context.Context, stream string, from, to int64, visible func(int64, time.Time) bool) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		start, err := s.commitHolding(ctx, stream, from)
		if err == nil {
			err = s.readCommits(ctx, stream, start, from, to, nil, visible, yield)
		}
		if err != nil {
			yield(eventsource.Record{}, err)
		}
	}
}

// commitHolding returns the key of the stream's chain item that holds
// version from, or is the last before it: the newest key below from (a
// commit's key is within [base, base+1)). It is 0 for from 1, or when no
// such item is stored.
func (s *Store) commitHolding(ctx context.Context, stream string, from int64) (slot, error) {
	if from <= 1 {
		return slot{}, nil
	}
	out, err := s.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk AND sk < :sk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(streamKey(stream)), ":sk": num(from)},
		ProjectionExpression:      aws.String("sk"),
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return slot{}, s.wrap(err, "read stream %q", stream)
	}
	if len(out.Items) == 0 {
		return slot{}, nil
	}
	start, _ := getSlot(out.Items[0], attrSK)
	return start, nil
}

// chainPage queries a page of the stream's chain from key start on (below
// version to when to > 0), after startKey.
func (s *Store) chainPage(ctx context.Context, stream string, start slot, to int64, startKey map[string]types.AttributeValue) (*dynamodb.QueryOutput, error) {
	cond := "pk = :pk AND sk >= :lo"
	vals := map[string]types.AttributeValue{":pk": str(streamKey(stream)), ":lo": start.attr()}
	if to > 0 {
		cond = "pk = :pk AND sk BETWEEN :lo AND :hi"
		vals[":hi"] = slot{to - 1, slotSteps - 1}.attr()
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
		return nil, s.wrap(err, "read stream %q", stream)
	}
	return out, nil
}

// readCommits reads the stream's chain from key start on (below to when
// to > 0), a page at a time beginning with first when it is set, and
// yields the records within [from, to] that visible (when set) keeps. It
// returns the error that ended the read, for the caller to yield; a record
// that cannot be decoded is yielded there and ends the read.
func (s *Store) readCommits(ctx context.Context, stream string, start slot, from, to int64, first *dynamodb.QueryOutput, visible func(int64, time.Time) bool, yield func(eventsource.Record, error) bool) error {
	out := first
	var startKey map[string]types.AttributeValue
	for {
		if err := s.check(ctx); err != nil {
			return err
		}
		if out == nil {
			var err error
			if out, err = s.chainPage(ctx, stream, start, to, startKey); err != nil {
				return err
			}
		}
		more, err := yieldCommits(stream, out.Items, from, to, visible, yield)
		if err != nil || !more {
			return err
		}
		if out.LastEvaluatedKey == nil {
			return nil
		}
		if k, _ := getSlot(out.LastEvaluatedKey, attrSK); to > 0 && k.v >= to {
			return nil
		}
		startKey, out = out.LastEvaluatedKey, nil
	}
}

// yieldCommits yields the records of the commit items within [from, to]
// (to <= 0: no end) that visible keeps (all when nil); markers hold none.
// more is false once past to, or when a record was yielded with its error
// or yield says stop.
func yieldCommits(stream string, items []map[string]types.AttributeValue, from, to int64, visible func(int64, time.Time) bool, yield func(eventsource.Record, error) bool) (more bool, err error) {
	for _, item := range items {
		c, err := decodeCommit(item)
		if err != nil {
			return false, fmt.Errorf("%w: stream %q: %v", eventsource.ErrCorruptData, stream, err)
		}
		for i := c.dropped; i < c.n; i++ {
			v := c.base + int64(i) + 1
			if v < from {
				continue
			}
			if to > 0 && v > to {
				return false, nil
			}
			if visible != nil && !visible(v, c.at) {
				continue
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

	rules map[string]storekit.Retention // of the current page's streams that have any
	now   time.Time                     // when the rules were read

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
			cs, err := r.ruled(func() ([]commit, error) {
				c, ok, err := r.covering(r.next)
				if !ok {
					return nil, err
				}
				return []commit{c}, err
			})
			if err != nil {
				return err
			}
			for i := range cs {
				if err := r.emit(&cs[i]); err != nil {
					return err
				}
			}
			resume = false
			continue
		}
		cs, err := r.ruled(func() ([]commit, error) { return r.forward(r.next) })
		if err != nil || len(cs) == 0 {
			return err
		}
		for i := range cs {
			c := &cs[i]
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
			if err := r.emit(c); err != nil || r.done {
				return err
			}
		}
	}
	return nil
}

// ruled runs fetch and, when the table has lifecycle rules (its flag, read
// at the same time until it is seen set), reads the rules of the streams
// the commits fetched belong to, for emit. Both reads start after the
// read of the page was asked for, so a rule written before is seen.
func (r *logReader) ruled(fetch func() ([]commit, error)) ([]commit, error) {
	type flag struct {
		set bool
		err error
	}
	var flagged chan flag
	if !r.s.ruled.Load() {
		flagged = make(chan flag, 1)
		go func() {
			set, err := r.s.lifecycleFlag(r.ctx)
			flagged <- flag{set, err}
		}()
	}
	cs, err := fetch()
	if flagged != nil {
		f := <-flagged
		if err == nil {
			err = f.err
		}
		if !f.set {
			r.rules = nil
			return cs, err
		}
	}
	if err != nil || len(cs) == 0 {
		return cs, err
	}
	r.rules, err = r.s.rulesOf(r.ctx, cs)
	r.now = time.Now()
	return cs, err
}

// emit yields c's records from position next on and moves next past c.
func (r *logReader) emit(c *commit) error {
	end := c.first + uint64(c.n)
	if end <= r.next {
		return nil
	}
	if !c.void {
		ret, ruled := r.rules[c.stream]
		for i := max(int(r.next-c.first), c.dropped); i < c.n; i++ {
			if ruled && !ret.Visible(c.base+int64(i)+1, c.at, r.now) {
				continue
			}
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

// forward returns the next page of commits and voids starting at or after
// pos, looking past empty buckets up to the counter's.
func (r *logReader) forward(pos uint64) ([]commit, error) {
	b := pos / bucketSize
	items, err := r.query(b, "p >= :p", pos, true, pageItems)
	if err != nil || len(items) > 0 {
		return decodeLog(items, err)
	}
	head, err := r.s.counter(r.ctx)
	if err != nil || head < pos {
		return nil, err
	}
	for b++; b <= head/bucketSize; b++ {
		items, err := r.query(b, "p >= :p", pos, true, pageItems)
		if err != nil || len(items) > 0 {
			return decodeLog(items, err)
		}
	}
	return nil, nil
}

func decodeLog(items []map[string]types.AttributeValue, err error) ([]commit, error) {
	if err != nil {
		return nil, err
	}
	cs := make([]commit, len(items))
	for i, item := range items {
		if cs[i], err = decodeCommit(item); err != nil {
			return nil, fmt.Errorf("%w: global log item: %v", eventsource.ErrCorruptData, err)
		}
	}
	return cs, nil
}

// lifecycleFlag reports whether the table has lifecycle rules (the flag
// set before its first marker), and remembers it once it has.
func (s *Store) lifecycleFlag(ctx context.Context) (bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(lifecycleKey, 0),
		ProjectionExpression: aws.String("pk"), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return false, s.wrap(err, "read the lifecycle flag")
	}
	if out.Item == nil {
		return false, nil
	}
	s.ruled.Store(true)
	return true, nil
}

// rulesOf returns the retention, now, of each stream of cs that has
// lifecycle rules: a consistent BatchGetItem of the streams' flags, then
// the chain's end of each flagged stream (16 at a time).
func (s *Store) rulesOf(ctx context.Context, cs []commit) (map[string]storekit.Retention, error) {
	seen := map[string]bool{}
	var keys []map[string]types.AttributeValue
	for i := range cs {
		if id := cs[i].stream; !cs[i].void && cs[i].dropped < cs[i].n && !seen[id] {
			seen[id] = true
			keys = append(keys, key(flagKey(id), 0))
		}
	}
	var flagged []string
	err := s.batchGet(ctx, keys, "pk", func(item map[string]types.AttributeValue) {
		if pk, _ := getS(item, attrPK); len(pk) > 2 {
			flagged = append(flagged, pk[2:])
		}
	})
	if err != nil {
		return nil, s.wrap(err, "read the lifecycle flags of streams")
	}
	if len(flagged) == 0 {
		return nil, nil
	}
	rets := make([]storekit.Retention, len(flagged))
	errs := make([]error, len(flagged))
	sem := make(chan struct{}, claimWorkers)
	var wg sync.WaitGroup
	for i, id := range flagged {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			st, err := s.state(ctx, id, false)
			rets[i], errs[i] = st.retention(), err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rules := make(map[string]storekit.Retention, len(flagged))
	for i, id := range flagged {
		if !rets[i].IsZero() {
			rules[id] = rets[i]
		}
	}
	return rules, nil
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
// entry per stream in memory before sorting them. A stream's version is
// the end of its chain; its latest marker's cut leaves out a deleted
// stream (storekit.Retention.Absent).
func (s *Store) ListStreams(ctx context.Context, prefix string) iter.Seq2[eventsource.StreamInfo, error] {
	return func(yield func(eventsource.StreamInfo, error) bool) {
		if err := s.check(ctx); err != nil {
			yield(eventsource.StreamInfo{}, err)
			return
		}
		type listed struct {
			head   int64
			marker slot
			cut    int64
		}
		streams := map[string]*listed{}
		var startKey map[string]types.AttributeValue
		for {
			out, err := s.client.Scan(ctx, &dynamodb.ScanInput{
				TableName:                 aws.String(s.table),
				FilterExpression:          aws.String("begins_with(pk, :p)"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":p": str(streamKey(prefix))},
				ProjectionExpression:      aws.String("pk, sk, n, rc"),
				ExclusiveStartKey:         startKey,
				ConsistentRead:            aws.Bool(true),
			})
			if err != nil {
				yield(eventsource.StreamInfo{}, s.wrap(err, "list streams"))
				return
			}
			for _, item := range out.Items {
				pk, _ := getS(item, attrPK)
				k, _ := getSlot(item, attrSK)
				id := strings.TrimPrefix(pk, "s#")
				l := streams[id]
				if l == nil {
					l = &listed{}
					streams[id] = l
				}
				// A marker, and every commit after one, carries the
				// latest marker's cut: the newest such item's is the
				// stream's.
				if cut, ok := getN(item, attrCut); ok && (l.cut == 0 || l.marker.less(k)) {
					l.marker, l.cut = k, cut
				}
				n, _ := getN(item, attrCount)
				l.head = max(l.head, k.v+n)
			}
			if out.LastEvaluatedKey == nil {
				break
			}
			startKey = out.LastEvaluatedKey
		}
		infos := make([]eventsource.StreamInfo, 0, len(streams))
		for id, l := range streams {
			if !(storekit.Retention{Cut: l.cut}).Absent(l.head) {
				infos = append(infos, eventsource.StreamInfo{StreamID: id, Version: l.head})
			}
		}
		sort.Slice(infos, func(i, j int) bool { return infos[i].StreamID < infos[j].StreamID })
		for _, info := range infos {
			if !yield(info, nil) {
				return
			}
		}
	}
}

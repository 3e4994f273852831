package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// errLost: another commit took the key this append wanted.
var errLost = errors.New("lost the race for the commit key")

func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

// Append implements eventsource.Store. See the package documentation for how
// an append becomes one conditional write.
func (s *Store) Append(ctx context.Context, stream string, expected eventsource.ExpectedVersion, records []eventsource.Record) (eventsource.AppendResult, error) {
	if err := s.check(ctx); err != nil {
		return eventsource.AppendResult{}, err
	}
	recs := make([]eventsource.Record, len(records))
	copy(recs, records)
	if err := storekit.ValidateAppend(stream, expected, recs, s.Limits()); err != nil {
		return eventsource.AppendResult{}, err
	}
	for i := range recs {
		recs[i].StreamID = stream
	}
	a := &appendOp{s: s, stream: stream, expected: expected, recs: recs, token: eventsource.NewEventID()}
	res, err := a.run(ctx)
	if err == nil {
		s.changed.Fire()
	}
	return res, err
}

type appendOp struct {
	s        *Store
	stream   string
	expected eventsource.ExpectedVersion
	recs     []eventsource.Record
	token    string // names this append's claims
}

// run appends: it learns where the stream's chain ends, then claims the
// event IDs while it allocates positions, then writes the commit there. The
// end needs no read on a first attempt that expects no stream (the commit
// after version 0 needs no predecessor, and its write fails if anything is
// there: an event or a marker) or exactly the version this Store's own last
// write to the stream left (keys only grow, so a stale entry makes the
// write fail, never leave a gap): two round trips in sequence then, three
// otherwise. A read tells a tombstone (always the chain's last item) and,
// for NoStream, the retention (ret.Expect: NoStream accepts a soft-deleted
// stream).
func (a *appendOp) run(ctx context.Context) (eventsource.AppendResult, error) {
	s := a.s
	for attempt := 0; ; attempt++ {
		var at state
		known := false
		switch {
		case attempt > 0 || a.expected < 0:
		case a.expected == eventsource.NoStream:
			known = true
		default:
			at, known = s.heads.Get(a.stream)
			known = known && at.head == int64(a.expected)
		}
		expected := a.expected
		if !known {
			var err error
			if at, expected, err = a.resolve(ctx); err != nil {
				return eventsource.AppendResult{}, err
			}
		}
		if !expected.Matches(at.head) {
			if res, done, err := a.retried(ctx, expected); done {
				return res, err
			}
			return eventsource.AppendResult{}, &eventsource.ConcurrencyError{Stream: a.stream, Expected: a.expected, Actual: at.head}
		}
		allocated := make(chan allocation, 1)
		go func() {
			first, err := s.allocate(ctx, len(a.recs))
			allocated <- allocation{first: first, at: time.Now(), err: err}
		}()
		stored, err := a.claim(ctx, at.next)
		al := <-allocated
		if (err != nil || stored) && al.err == nil {
			s.void(al.first, len(a.recs))
		}
		if err != nil {
			return eventsource.AppendResult{}, err
		}
		if stored {
			if known {
				if _, expected, err = a.resolve(ctx); err != nil {
					return eventsource.AppendResult{}, err
				}
			}
			if res, done, err := a.retried(ctx, expected); done {
				return res, err
			}
			// Unreachable: a stored event stays stored.
			return eventsource.AppendResult{}, fmt.Errorf("%w: stream %q: an event ID is already stored", eventsource.ErrDuplicateEvent, a.stream)
		}
		if al.err != nil {
			return eventsource.AppendResult{}, al.err
		}
		res, err := a.commit(ctx, at, al)
		if errors.Is(err, errLost) {
			// Another item followed the end first. Read again: with an
			// exact expected version that ends in a conflict (or an
			// idempotent retry, or a marker to follow); with Any or
			// StreamExists, try again (until ctx ends), after a growing,
			// jittered pause once a few rounds were lost, so that writers
			// racing one stream take turns.
			s.heads.Drop(a.stream)
			if attempt >= 2 {
				if err := storekit.Sleep(ctx, jitter(backoff(attempt-2))); err != nil {
					return eventsource.AppendResult{}, err
				}
			}
			continue
		}
		if err == nil {
			s.heads.Put(a.stream, state{next: slot{v: res.LastVersion}, head: res.LastVersion, mark: at.mark})
		}
		return res, err
	}
}

// resolve reads the end of the stream's chain: where the commit goes and
// what the append's expected version means there. A tombstoned stream is
// refused.
func (a *appendOp) resolve(ctx context.Context) (state, eventsource.ExpectedVersion, error) {
	st, err := a.s.state(ctx, a.stream, false)
	if err != nil {
		return state{}, 0, err
	}
	ret := st.retention()
	if ret.Tombstoned() {
		return state{}, 0, storekit.Tombstoned(a.stream)
	}
	return st, ret.Expect(a.expected, st.head), nil
}

// allocation is a range of positions taken from the counter at a time.
type allocation struct {
	first uint64
	at    time.Time // monotonic
	err   error
}

func (s *Store) wrap(err error, format string, args ...any) error {
	if nf := (*types.ResourceNotFoundException)(nil); errors.As(err, &nf) {
		return s.missingTable()
	}
	return fmt.Errorf("dynamodb: "+format+": %w", append(args, err)...)
}

// getCommit reads the item of stream's chain at key k (a marker holds no
// records).
func (s *Store) getCommit(ctx context.Context, stream string, k slot) (commit, bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            map[string]types.AttributeValue{attrPK: str(streamKey(stream)), attrSK: k.attr()},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return commit{}, false, s.wrap(err, "read stream %q at %s", stream, k)
	}
	if out.Item == nil {
		return commit{}, false, nil
	}
	c, err := decodeCommit(out.Item)
	if err != nil {
		return commit{}, false, fmt.Errorf("%w: stream %q at %s: %v", eventsource.ErrCorruptData, stream, k, err)
	}
	return c, true, nil
}

// claimOf is a claim item: the event ID is meant for the commit of stream
// at key base of its chain, made by the append named token.
type claimOf struct {
	stream string
	base   slot
	token  string
}

func decodeClaim(item map[string]types.AttributeValue) (claimOf, bool) {
	st, ok1 := getS(item, attrStream)
	b, ok2 := getSlot(item, attrBase)
	k, ok3 := getS(item, attrToken)
	return claimOf{st, b, k}, ok1 && ok2 && ok3
}

// holds reports whether the commit the claim names is stored and holds id:
// then the event is stored there, until a scavenge removes it.
func (s *Store) holds(ctx context.Context, c claimOf, id string) (stored, present bool, err error) {
	cm, found, err := s.getCommit(ctx, c.stream, c.base)
	if err != nil || !found {
		return false, false, err
	}
	for i := 0; i < cm.n; i++ {
		if cm.eventID(i) == id {
			return true, true, nil
		}
	}
	return false, true, nil
}

// claimWorkers bounds the claims one append writes at once.
const claimWorkers = 16

// claim makes every event ID of the append name (stream, base) and this
// append. stored reports that one of them is stored already (the append is
// a retry or a duplicate); an ID claimed by another append in flight for
// another place is eventsource.ErrDuplicateEvent.
func (a *appendOp) claim(ctx context.Context, base slot) (stored bool, err error) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
		sem   = make(chan struct{}, claimWorkers)
	)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range a.recs {
		id := a.recs[i].EventID
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st, err := a.claimOne(cctx, id, base)
			mu.Lock()
			defer mu.Unlock()
			if st {
				stored = true
			}
			if err != nil && first == nil {
				first = err
				cancel()
			}
		}()
	}
	wg.Wait()
	if first != nil && !stored {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, first
	}
	return stored, nil
}

func (a *appendOp) claimOne(ctx context.Context, id string, base slot) (stored bool, err error) {
	s := a.s
	item := map[string]types.AttributeValue{
		attrPK: str(claimKey(id)), attrSK: num(0),
		attrStream: str(a.stream), attrBase: base.attr(), attrToken: str(a.token),
	}
	cond := aws.String("attribute_not_exists(pk) OR k = :k")
	vals := map[string]types.AttributeValue{":k": str(a.token)}
	for tries := 0; tries < 20; tries++ {
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(s.table), Item: item,
			ConditionExpression: cond, ExpressionAttributeValues: vals,
		})
		if err == nil {
			return false, nil
		}
		if !isConditionFailed(err) {
			return false, s.wrap(err, "claim event ID %q", id)
		}
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(s.table), Key: key(claimKey(id), 0), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return false, s.wrap(err, "read the claim of event ID %q", id)
		}
		if out.Item == nil {
			continue
		}
		other, ok := decodeClaim(out.Item)
		if !ok {
			return false, fmt.Errorf("%w: claim of event ID %q is malformed", eventsource.ErrCorruptData, id)
		}
		held, present, err := s.holds(ctx, other, id)
		switch {
		case err != nil:
			return false, err
		case held:
			return true, nil
		case !present && (other.stream != a.stream || other.base != base):
			// Its commit may still land, elsewhere: the ID is taken.
			return false, fmt.Errorf("%w: stream %q: event %q is claimed by an append to %q in flight",
				eventsource.ErrDuplicateEvent, a.stream, id, other.stream)
		}
		// The claim is dead (its place holds another commit) or wants
		// the very key this append wants (at most one of the two commits
		// lands): take it over, unless someone else did first.
		// The condition names the base too: the claimant may have moved
		// its claim to a later base since it was read.
		cond = aws.String("k = :old AND b = :b")
		vals = map[string]types.AttributeValue{":old": str(other.token), ":b": other.base.attr()}
	}
	return false, fmt.Errorf("dynamodb: stream %q: could not claim event ID %q", a.stream, id)
}

// retried decides whether the append's records were stored already: done is
// false when none of their IDs is stored; otherwise the append is either an
// idempotent retry (the original result) or eventsource.ErrDuplicateEvent.
// expected is the append's as the stream's retention reads it
// (storekit.Retention.Expect).
func (a *appendOp) retried(ctx context.Context, expected eventsource.ExpectedVersion) (eventsource.AppendResult, bool, error) {
	s := a.s
	claims, err := s.claims(ctx, a.recs)
	if err != nil {
		return eventsource.AppendResult{}, true, err
	}
	firstStored := false
	var firstClaim claimOf
	for i := range a.recs {
		c, ok := claims[a.recs[i].EventID]
		if !ok {
			continue
		}
		held, _, err := s.holds(ctx, c, a.recs[i].EventID)
		if err != nil {
			return eventsource.AppendResult{}, true, err
		}
		if !held {
			continue
		}
		if i > 0 {
			if !firstStored {
				return eventsource.AppendResult{}, true, storekit.Duplicate(a.stream, a.recs[i].EventID, i)
			}
			break
		}
		firstStored, firstClaim = true, c
	}
	if !firstStored {
		return eventsource.AppendResult{}, false, nil
	}
	id := a.recs[0].EventID
	first := eventsource.Record{StreamID: firstClaim.stream, EventID: id}
	var following []eventsource.Record
	if firstClaim.stream == a.stream {
		cm, _, err := s.getCommit(ctx, firstClaim.stream, firstClaim.base)
		if err != nil {
			return eventsource.AppendResult{}, true, err
		}
		for i := 0; i < cm.n; i++ {
			if cm.eventID(i) == id {
				first.Version = cm.base + int64(i) + 1
			}
		}
		for r, err := range s.readRange(ctx, a.stream, first.Version, first.Version+int64(len(a.recs))-1, nil) {
			if err != nil {
				return eventsource.AppendResult{}, true, err
			}
			following = append(following, r)
		}
		if len(following) > 0 {
			first.Position = following[0].Position
		}
	}
	res, err := storekit.ExactRetry(a.stream, expected, storekit.EventIDs(a.recs), first, following)
	return res, true, err
}

// claims reads the claims of recs' event IDs (consistently), by ID.
func (s *Store) claims(ctx context.Context, recs []eventsource.Record) (map[string]claimOf, error) {
	keys := make([]map[string]types.AttributeValue, len(recs))
	for i := range recs {
		keys[i] = key(claimKey(recs[i].EventID), 0)
	}
	out := map[string]claimOf{}
	err := s.batchGet(ctx, keys, "", func(item map[string]types.AttributeValue) {
		pk, _ := getS(item, attrPK)
		if c, ok := decodeClaim(item); ok && len(pk) > 2 {
			out[pk[2:]] = c
		}
	})
	if err != nil {
		return nil, s.wrap(err, "read event ID claims")
	}
	return out, nil
}

// batchGet reads the items of keys consistently (projected on proj when
// it is set), 100 to a BatchGetItem, retrying what DynamoDB leaves
// unprocessed, and passes each found to fn.
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, proj string, fn func(map[string]types.AttributeValue)) error {
	for start := 0; start < len(keys); start += 100 {
		ka := types.KeysAndAttributes{Keys: keys[start:min(start+100, len(keys))], ConsistentRead: aws.Bool(true)}
		if proj != "" {
			ka.ProjectionExpression = aws.String(proj)
		}
		req := map[string]types.KeysAndAttributes{s.table: ka}
		for tries := 0; len(req) > 0; tries++ {
			if tries > 0 {
				if err := storekit.Sleep(ctx, backoff(tries)); err != nil {
					return err
				}
			}
			res, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return err
			}
			for _, item := range res.Responses[s.table] {
				fn(item)
			}
			req = res.UnprocessedKeys
		}
	}
	return nil
}

// commit writes the commit item at the end at of the stream's chain, at the
// positions of al, if no other item took that key first (errLost).
// Positions allocated too long ago are voided and taken again.
func (a *appendOp) commit(ctx context.Context, at state, al allocation) (eventsource.AppendResult, error) {
	base := at.head
	s := a.s
	n := len(a.recs)
	for late := 0; ; late++ {
		if late > 0 {
			first, err := s.allocate(ctx, n)
			if err != nil {
				return eventsource.AppendResult{}, err
			}
			al = allocation{first: first, at: time.Now()}
		}
		first, allocated := al.first, al.at
		storekit.BeforeCommit(ctx)
		if err := s.check(ctx); err != nil {
			s.void(first, n)
			return eventsource.AppendResult{}, err
		}
		if time.Since(allocated) > s.gapTimeout/2 {
			// Readers may already have skipped these positions.
			s.void(first, n)
			if late >= 3 {
				return eventsource.AppendResult{}, fmt.Errorf("dynamodb: stream %q: the commit could not be sent within %v of allocating its positions", a.stream, s.gapTimeout/2)
			}
			continue
		}
		// Neither the SDK's retries nor a slow connection may send the
		// commit after its positions' deadline.
		pctx, cancel := context.WithDeadline(ctx, allocated.Add(s.gapTimeout/2))
		now := time.Now().UTC()
		_, err := s.client.PutItem(pctx, &dynamodb.PutItemInput{
			TableName:           aws.String(s.table),
			Item:                commitItem(a.stream, at.next, first, now, a.recs, at.mark),
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded) // before cancel, which ends pctx too
		cancel()
		switch {
		case err == nil:
			return eventsource.AppendResult{
				StreamID: a.stream, FirstVersion: base + 1, LastVersion: base + int64(n),
				FirstPosition: first, LastPosition: first + uint64(n) - 1,
			}, nil
		case isConditionFailed(err):
			s.void(first, n)
			return eventsource.AppendResult{}, errLost
		case ctx.Err() != nil:
			// The put may have landed or not; no void, so readers wait
			// for the gap's bound if it did not.
			return eventsource.AppendResult{}, ctx.Err()
		case timedOut:
			return eventsource.AppendResult{}, fmt.Errorf("dynamodb: append to stream %q after version %d: no answer within %v of allocating its positions (outcome unknown): %w",
				a.stream, base, s.gapTimeout/2, err)
		default:
			return eventsource.AppendResult{}, s.wrap(err, "append to stream %q after version %d (outcome unknown)", a.stream, base)
		}
	}
}

// allocate takes n positions from the counter and returns the first.
func (s *Store) allocate(ctx context.Context, n int) (uint64, error) {
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(counterKey, 0),
		UpdateExpression:          aws.String("ADD c :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(n)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, s.wrap(err, "allocate %d positions", n)
	}
	last, ok := getN(out.Attributes, attrCounter)
	if !ok || last < int64(n) {
		return 0, fmt.Errorf("%w: position counter is malformed", eventsource.ErrCorruptData)
	}
	return uint64(last) - uint64(n) + 1, nil
}

// void marks positions that will never hold a commit, so that readers skip
// them at once. It runs even when the append's context is done; if it
// fails, readers skip the positions after the gap timeout.
func (s *Store) void(first uint64, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: voidItem(first, n)})
	if err != nil {
		s.log.Warn("dynamodb: could not void positions; readers will wait for them", "first", first, "n", n, "err", err)
	}
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

func backoff(try int) time.Duration {
	return min(time.Duration(1<<min(try, 10))*time.Millisecond, 200*time.Millisecond)
}

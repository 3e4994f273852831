package dynamodb

import (
	"context"
	"errors"
	"maps"
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

// Scavenge implements eventsource.Scavenger. It finds the streams that
// have had a lifecycle write with a Scan for their flags (its cost grows
// with the table), and then, stream by stream in ID order, for each whose
// retention retires anything: it rewrites every commit that holds retired
// records without them (keeping its key, positions and count, so versions,
// the chain and the global log stay as they were), deletes the claims of
// their event IDs (which become free) and, for a deleted stream, its
// snapshots. Markers are kept: they hold the stream's version and rules.
func (s *Store) Scavenge(ctx context.Context, opts eventsource.ScavengeOptions) (eventsource.ScavengeResult, error) {
	var res eventsource.ScavengeResult
	if err := s.check(ctx); err != nil {
		return res, err
	}
	ids, err := s.flaggedStreams(ctx, opts.After)
	if err != nil {
		return res, err
	}
	for _, id := range ids {
		if err := s.check(ctx); err != nil {
			return res, err
		}
		st, err := s.state(ctx, id, false)
		if err != nil {
			return res, err
		}
		ret := st.retention()
		if ret.IsZero() {
			continue
		}
		removed, err := s.scavengeStream(ctx, id, ret)
		res.Removed += removed
		if err == nil && st.mark.snapCut > 0 {
			_, err = s.dropSnapshots(ctx, id, st.mark.snapCut)
		}
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, err
		}
		res.Streams++
		res.Last = id
		if opts.Progress != nil {
			opts.Progress(res)
		}
	}
	return res, nil
}

// flaggedStreams returns, sorted, the IDs after after of the streams whose
// lifecycle flag is set.
func (s *Store) flaggedStreams(ctx context.Context, after string) ([]string, error) {
	var ids []string
	var startKey map[string]types.AttributeValue
	for {
		out, err := s.client.Scan(ctx, &dynamodb.ScanInput{
			TableName:                 aws.String(s.table),
			FilterExpression:          aws.String("begins_with(pk, :p)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": str(flagKey(""))},
			ProjectionExpression:      aws.String("pk"),
			ExclusiveStartKey:         startKey,
			ConsistentRead:            aws.Bool(true),
		})
		if err != nil {
			return nil, s.wrap(err, "list the streams with lifecycle rules")
		}
		for _, item := range out.Items {
			pk, _ := getS(item, attrPK)
			if id := strings.TrimPrefix(pk, flagKey("")); id > after {
				ids = append(ids, id)
			}
		}
		if startKey = out.LastEvaluatedKey; startKey == nil {
			break
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// scavengeStream removes the records of stream that ret retires and
// returns how many it removed. Commits are rewritten 16 at a time, each
// on condition that no other scavenge rewrote it since it was read.
func (s *Store) scavengeStream(ctx context.Context, stream string, ret storekit.Retention) (int64, error) {
	now := time.Now()
	to := int64(0) // all of the chain
	if ret.MaxAge == 0 && ret.Since.IsZero() {
		to = ret.Cut // only the cut retires: only the keys below it
	}
	var (
		mu      sync.Mutex
		removed int64
		errs    []error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, claimWorkers)
	)
	var startKey map[string]types.AttributeValue
	for {
		out, err := s.chainPage(ctx, stream, slot{}, to, startKey)
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			break
		}
		for _, item := range out.Items {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				n, err := s.scavengeCommit(ctx, stream, item, ret, now)
				mu.Lock()
				defer mu.Unlock()
				removed += n
				if err != nil {
					errs = append(errs, err)
				}
			})
		}
		if startKey = out.LastEvaluatedKey; startKey == nil {
			break
		}
	}
	wg.Wait()
	return removed, errors.Join(errs...)
}

// scavengeCommit rewrites one item of the chain without its retired
// records (they are always a prefix: a commit's records share one time,
// and the cut retires from the start) and then deletes their claims.
func (s *Store) scavengeCommit(ctx context.Context, stream string, item map[string]types.AttributeValue, ret storekit.Retention, now time.Time) (int64, error) {
	c, err := decodeCommit(item)
	if err != nil {
		return 0, s.wrap(err, "scavenge stream %q", stream)
	}
	if c.marker {
		return 0, nil
	}
	k := c.n
	if ret.Visible(c.base+int64(c.n), c.at, now) {
		k = int(min(max(ret.Cut-c.base-1, 0), int64(c.n)))
	}
	if k <= c.dropped {
		return 0, nil
	}
	ids := make([]string, 0, k-c.dropped)
	for i := c.dropped; i < k; i++ {
		ids = append(ids, c.eventID(i))
	}
	next := maps.Clone(item)
	next[attrDropped] = num(k)
	if k == c.n {
		delete(next, attrRecords)
	} else {
		next[attrRecords] = &types.AttributeValueMemberL{Value: c.recs[k-c.dropped:]}
	}
	unchanged := "attribute_exists(pk) AND attribute_not_exists(x)"
	var vals map[string]types.AttributeValue
	if c.dropped > 0 {
		unchanged, vals = "x = :x", map[string]types.AttributeValue{":x": num(c.dropped)}
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: next,
		ConditionExpression: aws.String(unchanged), ExpressionAttributeValues: vals,
	})
	if isConditionFailed(err) {
		return 0, nil // another scavenge did it
	}
	if err != nil {
		return 0, s.wrap(err, "scavenge stream %q at %s", stream, c.key)
	}
	// The records are gone, so their claims are dead; delete each unless
	// an append took it over since.
	var errs []error
	for _, id := range ids {
		_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(s.table), Key: key(claimKey(id), 0),
			ConditionExpression: aws.String("s = :s AND b = :b"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":s": str(stream), ":b": c.key.attr(),
			},
		})
		if err != nil && !isConditionFailed(err) {
			errs = append(errs, s.wrap(err, "delete the claim of event ID %q", id))
		}
	}
	return int64(k - c.dropped), errors.Join(errs...)
}

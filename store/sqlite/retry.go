package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// retried decides what an append that could not be written is: an exact
// retry of one already stored (its original result), a duplicate, or a
// version conflict. expected is the caller's, for the conflict; resolved
// is what it means for the stream (storekit.Retention.Expect), for the
// retry.
func (s *Store) retried(ctx context.Context, stream string, expected, resolved eventsource.ExpectedVersion, current int64, recs []eventsource.Record) (eventsource.AppendResult, error) {
	var firstStream string
	var firstVersion int64
	var firstPos uint64
	err := s.db.QueryRowContext(ctx, s.q.byEventID, recs[0].EventID).Scan(&firstStream, &firstVersion, &firstPos)
	if errors.Is(err, sql.ErrNoRows) {
		for i, r := range recs[1:] {
			err := s.db.QueryRowContext(ctx, s.q.byEventID, r.EventID).Scan(&firstStream, &firstVersion, &firstPos)
			if err == nil {
				return eventsource.AppendResult{}, storekit.Duplicate(stream, r.EventID, i+1)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return eventsource.AppendResult{}, s.wrap("append", err)
			}
		}
		return eventsource.AppendResult{}, &eventsource.ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
	}
	if err != nil {
		return eventsource.AppendResult{}, s.wrap("append", err)
	}
	first := eventsource.Record{StreamID: firstStream, Version: firstVersion, Position: firstPos, EventID: recs[0].EventID}
	var following []eventsource.Record
	if firstStream == stream {
		rows, err := s.db.QueryContext(ctx, s.q.idsAt, stream, firstVersion, firstVersion+int64(len(recs))-1)
		if err != nil {
			return eventsource.AppendResult{}, s.wrap("append", err)
		}
		defer rows.Close()
		for v := firstVersion; rows.Next(); v++ {
			r := eventsource.Record{StreamID: stream, Version: v}
			if err := rows.Scan(&r.EventID, &r.Position); err != nil {
				return eventsource.AppendResult{}, s.wrap("append", err)
			}
			following = append(following, r)
		}
		if err := rows.Err(); err != nil {
			return eventsource.AppendResult{}, s.wrap("append", err)
		}
	}
	return storekit.ExactRetry(stream, resolved, storekit.EventIDs(recs), first, following)
}

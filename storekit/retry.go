package storekit

import (
	"fmt"

	"github.com/eventsource-go/eventsource"
)

// ExactRetry decides what an append to stream, expecting expected, of
// records with event IDs ids is when the first ID is already stored, at
// first. stored are the records the stream holds from first.Version on,
// up to len(ids) of them (fewer when it ends, none when first is in another
// stream): the records an exact retry would have written.
//
// The append is an exact retry of the one that stored them when first is
// in stream, expected would have accepted the version before it (or is
// Any), and stored holds ids in order at consecutive versions:
// then ExactRetry returns that append's result. Anything else is an error
// wrapping eventsource.ErrDuplicateEvent. The records' data is not
// compared: the event ID is the promise that they are the same event.
func ExactRetry(stream string, expected eventsource.ExpectedVersion, ids []string, first eventsource.Record, stored []eventsource.Record) (eventsource.AppendResult, error) {
	ok := first.StreamID == stream && len(stored) == len(ids) &&
		(expected == eventsource.Any || expected.Matches(first.Version-1))
	for i := 0; ok && i < len(ids); i++ {
		ok = stored[i].StreamID == stream && stored[i].Version == first.Version+int64(i) && stored[i].EventID == ids[i]
	}
	if !ok {
		return eventsource.AppendResult{}, fmt.Errorf("%w: stream %q: event %q is already stored (%q version %d) and the append is not an exact retry",
			eventsource.ErrDuplicateEvent, stream, ids[0], first.StreamID, first.Version)
	}
	last := stored[len(stored)-1]
	return eventsource.AppendResult{
		StreamID: stream, FirstVersion: first.Version, LastVersion: last.Version,
		FirstPosition: first.Position, LastPosition: last.Position,
	}, nil
}

// Duplicate is the error of an append to stream whose first event ID is
// new but whose i-th, id, is already stored: an append is either new or a
// retry as a whole.
func Duplicate(stream, id string, i int) error {
	return fmt.Errorf("%w: stream %q: event %q (record %d of the append) is already stored", eventsource.ErrDuplicateEvent, stream, id, i)
}

// EventIDs returns the event IDs of records, in order.
func EventIDs(records []eventsource.Record) []string {
	ids := make([]string, len(records))
	for i := range records {
		ids[i] = records[i].EventID
	}
	return ids
}

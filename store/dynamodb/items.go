package dynamodb

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
)

// ItemRecords returns the records an item of the store's table holds, as
// a DynamoDB stream or a scan shows the item: the records of a commit (one
// append), with their streams, versions, positions and times. ok is false
// for the store's other items (markers, claims, the position counter,
// voids, reservations, snapshots, lifecycle flags): they hold no records.
// A commit item that does not decode is an error wrapping
// eventsource.ErrCorruptData.
func ItemRecords(item map[string]types.AttributeValue) (recs []eventsource.Record, ok bool, err error) {
	pk, _ := getS(item, attrPK)
	if !strings.HasPrefix(pk, "s#") {
		return nil, false, nil
	}
	if _, isCommit := item[attrCount]; !isCommit {
		return nil, false, nil // a marker
	}
	c, err := decodeCommit(item)
	if err != nil {
		return nil, true, &eventsource.DecodeError{Stream: pk[2:], Err: err}
	}
	for i := c.dropped; i < c.n; i++ {
		r, err := c.record(i)
		if err != nil {
			return recs, true, err
		}
		recs = append(recs, r)
	}
	return recs, true, nil
}

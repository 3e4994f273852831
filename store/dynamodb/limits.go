package dynamodb

import "github.com/eventsource-go/eventsource"

var _ eventsource.Limiter = (*Store)(nil)

// maxItemSize is DynamoDB's item limit: 400 KB, attribute names and values
// counted.
const maxItemSize = 400 << 10

// maxAppendBytes bounds one append (eventsource.AppendSize): an append is
// one item, whose keys, counts, positions and time take at most about 400
// bytes (with a 255-byte stream ID); 2 KiB are left for them. Each record
// takes at most 14 bytes of names and list and map framing, each metadata
// pair at most 5 of lengths, within what AppendSize counts.
const maxAppendBytes = maxItemSize - 2<<10

// Limits implements eventsource.Limiter: one append is one item, so at most
// 398 KiB (eventsource.AppendSize) and 7,689 records; Data up to
// WithMaxDataSize (256 KiB by default, at most 407,499 bytes, what fits one
// item); the portable metadata limits.
func (s *Store) Limits() eventsource.Limits {
	l := eventsource.PortableLimits()
	l.MaxDataBytes = s.maxData
	l.MaxRecordsPerAppend = eventsource.MaxRecordsPerCall
	l.MaxAppendBytes = maxAppendBytes
	return l.Normalize()
}

package nats

import "github.com/eventsource-go/eventsource"

var _ eventsource.Limiter = (*Store)(nil)

// headerRoom is what an append's headers (message ID, expected sequence) may
// take of the server's max_payload; they take about 150 bytes.
const headerRoom = 512

// commitHead is the most a commit's format byte, first version and record
// count take (see encodeCommit). Each record's lengths take at most 12 bytes
// and each metadata pair's 5, within what eventsource.AppendSize counts.
const commitHead = 1 + 10 + 3

// Limits implements eventsource.Limiter. An append is one message, and the
// server refuses a message (headers included) over its max_payload (1 MiB by
// default, at most 64 MiB): one append takes the connected server's
// max_payload less 526 bytes of headers and framing (1,048,050 bytes of
// eventsource.AppendSize with the default), so with the default at most
// 19,774 records. Data is bounded by WithMaxDataSize (1 MiB by default) and
// by what fits one message (1,047,997 bytes by default); metadata takes the
// portable limits.
func (s *Store) Limits() eventsource.Limits {
	l := eventsource.PortableLimits()
	l.MaxDataBytes = s.cfg.maxData
	if l.MaxDataBytes <= 0 {
		l.MaxDataBytes = eventsource.DefaultMaxData
	}
	l.MaxRecordsPerAppend = eventsource.MaxRecordsPerCall
	l.MaxAppendBytes = s.maxCommit() - commitHead
	return l.Normalize()
}

// maxCommit is the largest message body an append may publish.
func (s *Store) maxCommit() int {
	limit := 1 << 20 // the server's default max_payload
	if nc := s.js.Conn(); nc != nil && nc.MaxPayload() > 0 {
		limit = int(nc.MaxPayload())
	}
	return limit - headerRoom
}

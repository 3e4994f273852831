package postgres

import "github.com/eventsource-go/eventsource"

var _ eventsource.Limiter = (*Store)(nil)

// maxAppendBytes bounds one append (eventsource.AppendSize). An append is
// one statement, and PostgreSQL refuses a message over 1 GB: metadata goes
// as JSON text, which escaping can make 6 times its size, so 64 MiB of
// records stay well below that whatever they hold.
const maxAppendBytes = 64 << 20

// Limits implements eventsource.Limiter: Data up to WithMaxDataSize (1 MiB
// by default; a bytea holds up to 1 GB), 65,536 records and 64 MiB
// (eventsource.AppendSize) per append, and the portable metadata limits
// (metadata is a jsonb column).
func (s *Store) Limits() eventsource.Limits {
	l := eventsource.PortableLimits()
	l.MaxDataBytes = s.cfg.maxData
	if l.MaxDataBytes <= 0 {
		l.MaxDataBytes = eventsource.DefaultMaxData
	}
	l.MaxRecordsPerAppend = eventsource.MaxRecordsPerCall
	l.MaxAppendBytes = maxAppendBytes
	return l.Normalize()
}

package sqlite

import "github.com/eventsource-go/eventsource"

var _ eventsource.Limiter = (*Store)(nil)

// Limits implements eventsource.Limiter: Data up to WithMaxDataSize (1 MiB
// by default), 65,536 records and 64 MiB (eventsource.AppendSize) per
// append, and the portable metadata limits. SQLite itself takes a row of up
// to 1,000,000,000 bytes (SQLITE_MAX_LENGTH); metadata is kept as JSON,
// which escaping can make up to 6 times its size.
func (s *Store) Limits() eventsource.Limits {
	l := eventsource.PortableLimits()
	l.MaxDataBytes = s.maxData
	if l.MaxDataBytes <= 0 {
		l.MaxDataBytes = eventsource.DefaultMaxData
	}
	l.MaxRecordsPerAppend = eventsource.MaxRecordsPerCall
	l.MaxAppendBytes = 64 << 20
	return l.Normalize()
}

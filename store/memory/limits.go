package memory

import "github.com/eventsource-go/eventsource"

var _ eventsource.Limiter = (*Store)(nil)

// Limits implements eventsource.Limiter. The memory store has no server to
// bound it; it keeps to the limits of the SQL stores, so that what passes
// in tests passes on them: Data up to WithMaxDataSize (1 MiB by default),
// 65,536 records and 64 MiB (eventsource.AppendSize) per append, and the
// portable metadata limits.
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

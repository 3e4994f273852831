package mysql

import "github.com/eventsource-go/eventsource"

var _ eventsource.Limiter = (*Store)(nil)

// maxAppendBytes bounds one append (eventsource.AppendSize). An append is
// one transaction of as many INSERTs as max_allowed_packet needs; the bound
// is the store's choice, not the server's.
const maxAppendBytes = 64 << 20

// Limits implements eventsource.Limiter: Data up to WithMaxDataSize (1 MiB
// by default), 65,536 records and 64 MiB (eventsource.AppendSize) per
// append, and the portable metadata limits. One record is one row of one
// INSERT, which must fit the server's max_allowed_packet with its data
// escaped (up to twice its size, with interpolateParams) and its metadata
// as escaped JSON (up to 7 times): Data is lowered, if needed, to what the
// packet of the server last migrated holds (7.8 MiB with MariaDB's default
// 16 MiB, 1.8 MiB with a 4 MiB packet).
func (s *Store) Limits() eventsource.Limits {
	l := eventsource.PortableLimits()
	l.MaxDataBytes = s.cfg.maxData
	if l.MaxDataBytes <= 0 {
		l.MaxDataBytes = eventsource.DefaultMaxData
	}
	// s.packet is a third of max_allowed_packet, capped at 16 MiB.
	packet := 3 * int(s.packet.Load())
	l.MaxDataBytes = min(l.MaxDataBytes, (packet-7*l.MaxMetadataBytes-8<<10)/2)
	l.MaxRecordsPerAppend = eventsource.MaxRecordsPerCall
	l.MaxAppendBytes = maxAppendBytes
	return l.Normalize()
}

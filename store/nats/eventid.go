package nats

import (
	"encoding/binary"
	"encoding/hex"
)

// An event ID the store generates (a record appended with an empty EventID)
// is not stored: it is derived from the place the record was stored, so it
// is unique by construction and needs no claim in the index. It is a UUID
// version 8 (RFC 9562, custom layout) in canonical lower-case text:
//
//	bits  0..47   the commit's JetStream sequence
//	bits 48..51   version (8)
//	bits 52..63   the record's index in its commit, high 12 bits
//	bits 64..65   variant (10)
//	bits 66..69   the record's index, low 4 bits
//	bits 70..127  check: 58 bits of FNV-1a of the stream ID and version
//
// Two places never share an ID (sequence and index are the record's
// position), generated IDs sort in position order, and the ID alone says
// where to look for its event: an append that supplies such an ID (one read
// back from the store) is checked against that place instead of the index.
// The check bits tie an ID to the stream and version it was made for, so an
// ID copied from another store with the same layout is only mistaken for one
// of this store's when this store holds the same stream and version at the
// same position (a copy of that store).

// generatedID is the ID of the record at index idx of the commit at seq,
// which is version of stream.
func generatedID(stream string, version int64, seq uint64, idx int) string {
	check := idCheck(stream, version)
	var u [16]byte
	binary.BigEndian.PutUint64(u[0:8], seq<<16|0x8000|uint64(idx>>4)&0x0fff)
	binary.BigEndian.PutUint64(u[8:16], 0x8000_0000_0000_0000|uint64(idx&0x0f)<<58|check)
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}

// idCheck is the 58 check bits of a generated ID: FNV-1a (64 bits) of the
// stream ID, a NUL (stream IDs hold none, so ("a", 12) and ("a1", 2) stay
// apart) and the version as 8 big-endian bytes, written out here because
// hash/fnv allocates and reads compute it for every record.
func idCheck(stream string, version int64) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(stream); i++ {
		h = (h ^ uint64(stream[i])) * prime
	}
	h *= prime // the NUL: h ^ 0 == h
	for shift := 56; shift >= 0; shift -= 8 {
		h = (h ^ uint64(byte(version>>shift))) * prime
	}
	return h & (1<<58 - 1)
}

// parseGeneratedID reports the place an ID in the generated layout names.
// ok is false for anything else (such an ID is an ordinary caller-supplied
// one); a true ok says only that the layout matches, not that the place
// holds the event: compare generatedID of what is stored there.
func parseGeneratedID(id string) (seq uint64, idx int, ok bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' || id[14] != '8' {
		return 0, 0, false
	}
	var hexed [32]byte
	copy(hexed[0:8], id[0:8])
	copy(hexed[8:12], id[9:13])
	copy(hexed[12:16], id[14:18])
	copy(hexed[16:20], id[19:23])
	copy(hexed[20:32], id[24:36])
	for _, c := range hexed {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return 0, 0, false // canonical text is lower case
		}
	}
	var u [16]byte
	if _, err := hex.Decode(u[:], hexed[:]); err != nil {
		return 0, 0, false
	}
	hi, lo := binary.BigEndian.Uint64(u[0:8]), binary.BigEndian.Uint64(u[8:16])
	if lo>>62 != 0b10 {
		return 0, 0, false
	}
	seq = hi >> 16
	idx = int(hi&0x0fff)<<4 | int(lo>>58&0x0f)
	return seq, idx, seq > 0
}

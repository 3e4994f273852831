package eventsource

import (
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"
	"sync"
	"time"
)

var idState struct {
	sync.Mutex
	lastMs uint64
	seq    uint16
	rng    *mrand.ChaCha8 // seeded from crypto/rand; saves a system call per ID
}

// NewEventID returns a new UUID version 7 (RFC 9562) as a string: random,
// and ordered by creation time, which keeps database indexes compact.
func NewEventID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	idState.Lock()
	if idState.rng == nil {
		var seed [32]byte
		_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails on supported platforms
		idState.rng = mrand.NewChaCha8(seed)
	}
	_, _ = idState.rng.Read(b[:])
	if ms <= idState.lastMs {
		ms = idState.lastMs
		idState.seq++
		if idState.seq > 0x0fff { // counter exhausted: borrow the next millisecond
			ms++
			idState.seq = 0
		}
	} else {
		idState.seq = uint16(b[6])<<8 | uint16(b[7])
		idState.seq &= 0x07ff // leave room to count up within the millisecond
	}
	idState.lastMs = ms
	seq := idState.seq
	idState.Unlock()

	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = 0x70 | byte(seq>>8)&0x0f
	b[7] = byte(seq)
	b[8] = b[8]&0x3f | 0x80

	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

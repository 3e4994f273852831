package nats

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventsource-go/eventsource"
)

// tokenByte reports whether b stands for itself in an encoded subject token.
func tokenByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

const hexDigits = "0123456789ABCDEF"

// encodeToken turns any non-empty string into one subject token, reversibly:
// ASCII letters, digits, '-' and '_' stand for themselves and every other
// byte becomes '~' and two upper-case hex digits ("a.b" → "a~2Eb",
// "with space" → "with~20space"). The encoding is canonical, so two IDs
// share a token only when they are equal.
func encodeToken(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('~')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

var errBadToken = errors.New("not an encoded subject token")

// decodeToken reverses encodeToken; it refuses anything encodeToken cannot
// have produced.
func decodeToken(t string) (string, error) {
	if strings.IndexByte(t, '~') < 0 {
		for i := 0; i < len(t); i++ {
			if !tokenByte(t[i]) {
				return "", errBadToken
			}
		}
		if t == "" {
			return "", errBadToken
		}
		return t, nil
	}
	out := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case tokenByte(c):
			out = append(out, c)
		case c == '~' && i+2 < len(t):
			hi, lo := unhex(t[i+1]), unhex(t[i+2])
			if hi < 0 || lo < 0 {
				return "", errBadToken
			}
			v := byte(hi<<4 | lo)
			if tokenByte(v) {
				return "", errBadToken // not canonical
			}
			out = append(out, v)
			i += 2
		default:
			return "", errBadToken
		}
	}
	return string(out), nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// streamSubject is the subject of stream id's commits.
func (s *Store) streamSubject(id string) string { return s.cfg.prefix + "." + encodeToken(id) }

// claimSubject is the subject of an event ID's claim in the index.
func (s *Store) claimSubject(eventID string) string {
	return s.cfg.prefix + "-ids." + encodeToken(eventID)
}

// streamOf decodes the stream ID of a commit's subject.
func (s *Store) streamOf(subject string) (string, error) {
	tok, ok := strings.CutPrefix(subject, s.cfg.prefix+".")
	if !ok {
		return "", fmt.Errorf("%w: subject %q is outside the store's prefix", eventsource.ErrCorruptData, subject)
	}
	id, err := decodeToken(tok)
	if err != nil || eventsource.ValidateStreamID(id) != nil {
		return "", fmt.Errorf("%w: subject %q does not name a stream", eventsource.ErrCorruptData, subject)
	}
	return id, nil
}

// A commit is the body of one message: all the records of one append.
//
//	byte    format (1, or 4 for a stream that has lifecycle state)
//	uvarint version of the first record
//	uvarint number of records
//	each record: event ID, type, codec, data (each a uvarint length and
//	bytes), uvarint number of metadata pairs, then key and value of each
//	(length-prefixed)
//
// The stream ID is the subject's; positions and the recorded time are the
// message's sequence and timestamp. An empty event ID stands for one the
// store generated, derived from the record's place (see generatedID).
//
// Format 4 (ruledFormat) is a commit of a stream that has an entry in the
// lifecycle index (metadata, a rule, a delete): an append copies the flag
// from the message it follows, so a read learns from the stream's last
// message alone whether the index has anything for it.
const (
	commitFormat = 1
	ruledFormat  = 4
)

// A tombstone is the one-byte body the DeleteStream of earlier versions of
// this package published on a stream's subject before purging the commits
// before it (the stream then started again at version 1). One whose purge
// did not finish is finished by the next process to read the stream's head;
// this version writes none.
const tombstoneFormat = 2

// A marker is the body of a lifecycle write (a metadata write, a soft or a
// hard delete) on the stream's own subject, published with the expected
// sequence of the stream's last message, so it is ordered with the
// stream's appends:
//
//	byte    format (3)
//	uvarint the stream's version (unchanged by the marker)
//	uvarint sequence of the write's intent in the lifecycle index
//	byte    flags: 1 = the stream is hard-deleted (tombstoned)
//
// A marker with the tombstone flag is the stream's last message for good:
// every append expects the sequence of the last message, sees it, and
// refuses.
const markerFormat = 3

const markerTombstone = 1

func encodeMarker(version int64, intent uint64, tomb bool) []byte {
	b := make([]byte, 0, 22)
	b = append(b, markerFormat)
	b = binary.AppendUvarint(b, uint64(version))
	b = binary.AppendUvarint(b, intent)
	flags := byte(0)
	if tomb {
		flags |= markerTombstone
	}
	return append(b, flags)
}

// msgInfo is what the head of a message on a stream's subject says.
type msgInfo struct {
	first   int64  // a commit's first version (0 for the others)
	count   int    // a commit's number of records (0 for the others)
	version int64  // the stream's version once this message is stored
	ruled   bool   // the stream has an entry in the lifecycle index
	marker  bool   // a lifecycle write
	intent  uint64 // a marker's intent sequence in the lifecycle index
	tomb    bool   // a marker of a hard delete
	legacy  bool   // an earlier version's DeleteStream tombstone
}

// parseMsg reads the head of a message on a stream's subject: a commit's
// versions, or what a marker says.
func parseMsg(data []byte) (msgInfo, error) {
	if len(data) == 1 && data[0] == tombstoneFormat {
		return msgInfo{legacy: true}, nil
	}
	d := decoder{b: data}
	switch d.byte() {
	case commitFormat, ruledFormat:
		first, count := int64(d.uvarint()), int(d.uvarint())
		if d.bad || first < 1 || count < 1 || count > eventsource.MaxRecordsPerCall || first > math.MaxInt64-int64(count) {
			return msgInfo{}, errCorrupt
		}
		return msgInfo{first: first, count: count, version: first + int64(count) - 1, ruled: data[0] == ruledFormat}, nil
	case markerFormat:
		v, intent, flags := d.uvarint(), d.uvarint(), d.byte()
		if d.bad || len(d.b) != 0 || v > math.MaxInt64 || flags&^markerTombstone != 0 {
			return msgInfo{}, errCorrupt
		}
		return msgInfo{version: int64(v), ruled: true, marker: true, intent: intent, tomb: flags&markerTombstone != 0}, nil
	}
	return msgInfo{}, errCorrupt
}

// commitSize is the encoded size of a commit of recs.
func commitSize(first int64, recs []eventsource.Record) int {
	n := 1 + uvarintLen(uint64(first)) + uvarintLen(uint64(len(recs)))
	for i := range recs {
		r := &recs[i]
		n += strLen(len(r.EventID)) + strLen(len(r.Type)) + strLen(len(r.Codec)) + strLen(len(r.Data))
		n += uvarintLen(uint64(len(r.Metadata)))
		for k, v := range r.Metadata {
			n += strLen(len(k)) + strLen(len(v))
		}
	}
	return n
}

func strLen(n int) int { return uvarintLen(uint64(n)) + n }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func encodeCommit(first int64, recs []eventsource.Record, ruled bool) []byte {
	b := make([]byte, 0, commitSize(first, recs))
	if ruled {
		b = append(b, ruledFormat)
	} else {
		b = append(b, commitFormat)
	}
	b = binary.AppendUvarint(b, uint64(first))
	b = binary.AppendUvarint(b, uint64(len(recs)))
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for i := range recs {
		r := &recs[i]
		str(r.EventID)
		str(r.Type)
		str(r.Codec)
		b = binary.AppendUvarint(b, uint64(len(r.Data)))
		b = append(b, r.Data...)
		b = binary.AppendUvarint(b, uint64(len(r.Metadata)))
		for k, v := range r.Metadata {
			str(k)
			str(v)
		}
	}
	return b
}

// commit is a decoded message.
type commit struct {
	first int64
	recs  []eventsource.Record // Version, Position, StreamID, RecordedAt set
}

func (c *commit) last() int64 { return c.first + int64(len(c.recs)) - 1 }

var errCorrupt = errors.New("malformed commit")

// decodeCommit unpacks a message body. Record Data slices share data (with
// their capacity capped), so a reader appending to one cannot reach another.
func decodeCommit(data []byte, stream string, seq uint64, recorded time.Time) (commit, error) {
	mi, err := parseMsg(data)
	if err != nil || mi.count == 0 {
		return commit{}, err
	}
	first, count := mi.first, mi.count
	d := decoder{b: data}
	d.byte()
	d.uvarint()
	d.uvarint()
	recs := make([]eventsource.Record, count)
	for i := range recs {
		r := &recs[i]
		r.StreamID = stream
		r.Version = first + int64(i)
		r.Position = seq<<16 | uint64(i)
		r.RecordedAt = recorded
		if r.EventID = d.str(); r.EventID == "" && !d.bad {
			r.EventID = generatedID(stream, r.Version, seq, i)
		}
		r.Type = d.str()
		r.Codec = d.str()
		r.Data = d.bytes()
		if n := d.uvarint(); n > 0 && !d.bad {
			if n > uint64(len(d.b)) {
				return commit{}, errCorrupt
			}
			r.Metadata = make(map[string]string, n)
			for j := uint64(0); j < n && !d.bad; j++ {
				k := d.str()
				r.Metadata[k] = d.str()
			}
		}
		if d.bad {
			return commit{}, errCorrupt
		}
	}
	if len(d.b) != 0 {
		return commit{}, errCorrupt
	}
	return commit{first: first, recs: recs}, nil
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return []byte{}
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) str() string {
	b := d.bytes()
	if d.bad {
		return ""
	}
	if !utf8.Valid(b) {
		d.bad = true
		return ""
	}
	return string(b)
}

// A claim is the body of a message in the event ID index: the stream and
// version the event is (or is about to be) stored at, and the token of the
// append that made the claim.
//
//	uvarint version, uvarint token length, token, stream ID
type claim struct {
	stream  string
	version int64
	token   string
	seq     uint64 // the claim message's sequence in the index
}

func encodeClaim(c claim) []byte {
	b := make([]byte, 0, 16+len(c.token)+len(c.stream))
	b = binary.AppendUvarint(b, uint64(c.version))
	b = binary.AppendUvarint(b, uint64(len(c.token)))
	b = append(b, c.token...)
	return append(b, c.stream...)
}

func decodeClaim(data []byte, seq uint64) (claim, error) {
	d := decoder{b: data}
	v := d.uvarint()
	tok := d.str()
	if d.bad || v < 1 || !utf8.Valid(d.b) {
		return claim{}, errCorrupt
	}
	return claim{stream: string(d.b), version: int64(v), token: tok, seq: seq}, nil
}

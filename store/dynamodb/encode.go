package dynamodb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
)

func streamKey(stream string) string { return "s#" + stream }
func claimKey(eventID string) string { return "e#" + eventID }
func voidKey(first uint64) string    { return "v#" + strconv.FormatUint(first, 10) }
func logKey(pos uint64) string       { return "log#" + strconv.FormatUint(pos/bucketSize, 10) }

func num[T int | int64 | uint64](v T) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(v)}
}

func str(v string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: v} }

func key(pk string, sk int64) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk), attrSK: num(sk)}
}

// commitItem is the item holding one append.
func commitItem(stream string, base int64, first uint64, at time.Time, recs []eventsource.Record) map[string]types.AttributeValue {
	list := make([]types.AttributeValue, len(recs))
	for i := range recs {
		r := &recs[i]
		m := map[string]types.AttributeValue{"i": str(r.EventID), "y": str(r.Type)}
		if r.Codec != "" {
			m["c"] = str(r.Codec)
		}
		if len(r.Data) > 0 {
			m["d"] = &types.AttributeValueMemberB{Value: r.Data}
		}
		if len(r.Metadata) > 0 {
			m["m"] = &types.AttributeValueMemberB{Value: encodeMetadata(r.Metadata)}
		}
		list[i] = &types.AttributeValueMemberM{Value: m}
	}
	return map[string]types.AttributeValue{
		attrPK:      str(streamKey(stream)),
		attrSK:      num(base),
		attrCount:   num(len(recs)),
		attrPos:     num(first),
		attrLog:     str(logKey(first)),
		attrTime:    num(at.UnixNano()),
		attrRecords: &types.AttributeValueMemberL{Value: list},
	}
}

// voidItem marks positions first..first+n-1 as never to be used, so readers
// of the global log skip them at once.
func voidItem(first uint64, n int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK:    str(voidKey(first)),
		attrSK:    num(0),
		attrCount: num(n),
		attrPos:   num(first),
		attrLog:   str(logKey(first)),
	}
}

// encodeMetadata packs metadata into bytes (uvarint-prefixed keys and values,
// keys sorted): one binary attribute is smaller than a map and has no trouble
// with empty values.
func encodeMetadata(md map[string]string) []byte {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(md[k])))
		b = append(b, md[k]...)
	}
	return b
}

var errCorrupt = errors.New("malformed item")

func decodeMetadata(b []byte) (map[string]string, error) {
	md := map[string]string{}
	next := func() (string, bool) {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return "", false
		}
		s := string(b[w : w+int(n)])
		b = b[w+int(n):]
		return s, true
	}
	for len(b) > 0 {
		k, ok1 := next()
		v, ok2 := next()
		if !ok1 || !ok2 {
			return nil, errCorrupt
		}
		md[k] = v
	}
	return md, nil
}

func getS(m map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := m[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

func getN(m map[string]types.AttributeValue, name string) (int64, bool) {
	v, ok := m[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil
}

// commit is a decoded commit or void item.
type commit struct {
	stream string
	base   int64  // the version the commit follows
	first  uint64 // position of its first record
	n      int    // records (or, for a void, positions)
	void   bool
	at     time.Time
	recs   []types.AttributeValue
}

// decodeCommit reads the keys and counts of a commit or void item; its
// records are decoded one by one with record.
func decodeCommit(item map[string]types.AttributeValue) (commit, error) {
	pk, ok := getS(item, attrPK)
	if !ok {
		return commit{}, errCorrupt
	}
	var c commit
	n, ok1 := getN(item, attrCount)
	p, ok2 := getN(item, attrPos)
	c.n, c.first = int(n), uint64(p)
	switch {
	case strings.HasPrefix(pk, "v#"):
		c.void = true
		if !ok1 || !ok2 || n < 1 {
			return commit{}, errCorrupt
		}
		return c, nil
	case strings.HasPrefix(pk, "s#"):
		c.stream = pk[2:]
	default:
		return commit{}, errCorrupt
	}
	base, ok3 := getN(item, attrSK)
	t, ok4 := getN(item, attrTime)
	l, ok5 := item[attrRecords].(*types.AttributeValueMemberL)
	if !ok1 || !ok3 || !ok4 || !ok5 || n < 1 || len(l.Value) != c.n {
		return commit{}, errCorrupt
	}
	c.base, c.at, c.recs = base, time.Unix(0, t).UTC(), l.Value
	return c, nil
}

// eventID returns the event ID of the commit's i-th record.
func (c *commit) eventID(i int) string {
	m, ok := c.recs[i].(*types.AttributeValueMemberM)
	if !ok {
		return ""
	}
	id, _ := getS(m.Value, "i")
	return id
}

// record decodes the commit's i-th record.
func (c *commit) record(i int) (eventsource.Record, error) {
	r := eventsource.Record{
		StreamID:   c.stream,
		Version:    c.base + int64(i) + 1,
		Position:   c.first + uint64(i),
		RecordedAt: c.at,
		Data:       []byte{},
	}
	m, ok := c.recs[i].(*types.AttributeValueMemberM)
	if !ok {
		return r, c.corrupt(i)
	}
	var ok1, ok2 bool
	r.EventID, ok1 = getS(m.Value, "i")
	r.Type, ok2 = getS(m.Value, "y")
	r.Codec, _ = getS(m.Value, "c")
	if !ok1 || !ok2 {
		return r, c.corrupt(i)
	}
	if d, ok := m.Value["d"].(*types.AttributeValueMemberB); ok {
		r.Data = slices.Clone(d.Value)
	}
	if md, ok := m.Value["m"].(*types.AttributeValueMemberB); ok {
		var err error
		if r.Metadata, err = decodeMetadata(md.Value); err != nil {
			return r, c.corrupt(i)
		}
	}
	return r, nil
}

func (c *commit) corrupt(i int) error {
	return &eventsource.DecodeError{Stream: c.stream, Version: c.base + int64(i) + 1, Err: errCorrupt}
}

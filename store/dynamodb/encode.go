package dynamodb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource"
)

func streamKey(stream string) string { return "s#" + stream }
func flagKey(stream string) string   { return "m#" + stream }
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

// slot is the sort key of an item of a stream's chain: v + j·10⁻¹⁸, where v
// is the stream's version before the item. The item after a commit has
// j = 0 (its key is the version it follows, as commits always had); the
// item after a marker has the marker's v and j + 1. So a commit's key
// always lies in [base, base+1) and keys grow along the chain.
type slot struct{ v, j int64 }

// slotSteps bounds j: the items after one version (markers, then at most
// one commit) number fewer than 10^18.
const slotSteps = 1_000_000_000_000_000_000

func (k slot) String() string {
	if k.j == 0 {
		return strconv.FormatInt(k.v, 10)
	}
	return strings.TrimRight(fmt.Sprintf("%d.%018d", k.v, k.j), "0")
}

func (k slot) attr() *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: k.String()}
}

func (k slot) less(o slot) bool { return k.v < o.v || k.v == o.v && k.j < o.j }

// parseSlot reads a sort key as DynamoDB returns it: digits, maybe a
// fraction of up to 18 digits (or any other decimal form, the slow way).
func parseSlot(s string) (slot, bool) {
	if strings.HasPrefix(s, "-") {
		return slot{}, false
	}
	whole, frac, dot := strings.Cut(s, ".")
	v, err := strconv.ParseInt(whole, 10, 64)
	if err == nil && v >= 0 && !dot {
		return slot{v: v}, true
	}
	if err == nil && v >= 0 && len(frac) > 0 && len(frac) <= 18 && strings.Trim(frac, "0123456789") == "" {
		j, _ := strconv.ParseInt(frac+strings.Repeat("0", 18-len(frac)), 10, 64)
		return slot{v, j}, true
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 {
		return slot{}, false
	}
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt64(slotSteps))
	if !scaled.IsInt() {
		return slot{}, false
	}
	q, m := new(big.Int).DivMod(scaled.Num(), big.NewInt(slotSteps), new(big.Int))
	if !q.IsInt64() {
		return slot{}, false
	}
	return slot{q.Int64(), m.Int64()}, true
}

func getSlot(m map[string]types.AttributeValue, name string) (slot, bool) {
	v, ok := m[name].(*types.AttributeValueMemberN)
	if !ok {
		return slot{}, false
	}
	return parseSlot(v.Value)
}

// commitItem is the item holding one append, at key k of its stream's
// chain; mark, when the stream has a marker, is its latest, whose key (lm)
// and rules the commit copies.
func commitItem(stream string, k slot, first uint64, at time.Time, recs []eventsource.Record, mark *marker) map[string]types.AttributeValue {
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
	item := map[string]types.AttributeValue{
		attrPK:      str(streamKey(stream)),
		attrSK:      k.attr(),
		attrCount:   num(len(recs)),
		attrPos:     num(first),
		attrLog:     str(logKey(first)),
		attrTime:    num(at.UnixNano()),
		attrRecords: &types.AttributeValueMemberL{Value: list},
	}
	if mark != nil {
		item[attrLastMarker] = mark.key.attr()
		mark.copyTo(item)
	}
	return item
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

// commit is a decoded commit or void item (or, read from a stream's chain,
// a marker: no records).
type commit struct {
	stream  string
	key     slot
	base    int64  // the version the commit follows
	first   uint64 // position of its first record
	n       int    // records (or, for a void, positions)
	dropped int    // leading records a scavenge removed
	void    bool
	marker  bool
	at      time.Time
	recs    []types.AttributeValue // records dropped..n-1
}

// decodeCommit reads the keys and counts of a commit, void or marker item;
// its records are decoded one by one with record.
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
	k, ok3 := getSlot(item, attrSK)
	if !ok3 {
		return commit{}, errCorrupt
	}
	c.key, c.base = k, k.v
	if _, ok := item[attrMetaVersion]; ok && !ok1 {
		c.marker, c.n = true, 0
		return c, nil
	}
	t, ok4 := getN(item, attrTime)
	x, _ := getN(item, attrDropped)
	l, ok5 := item[attrRecords].(*types.AttributeValueMemberL)
	if !ok5 && x == n {
		l, ok5 = &types.AttributeValueMemberL{}, true
	}
	if !ok1 || !ok2 || !ok4 || !ok5 || n < 1 || x < 0 || x > n || int64(len(l.Value)) != n-x {
		return commit{}, errCorrupt
	}
	c.dropped, c.at, c.recs = int(x), time.Unix(0, t).UTC(), l.Value
	return c, nil
}

// eventID returns the event ID of the commit's i-th record ("" when a
// scavenge removed it).
func (c *commit) eventID(i int) string {
	if i < c.dropped {
		return ""
	}
	m, ok := c.recs[i-c.dropped].(*types.AttributeValueMemberM)
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
	if i < c.dropped {
		return r, c.corrupt(i)
	}
	m, ok := c.recs[i-c.dropped].(*types.AttributeValueMemberM)
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

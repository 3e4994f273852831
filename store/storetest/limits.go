package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// RunLimits runs the suite's limits test alone, on a store newStore returns
// with its default options: the limits a store ships with, proven against
// its real server (Run runs the test too, on the store it is given, often
// configured smaller). It also checks that those limits cover
// eventsource.PortableLimits, as the defaults of every store of this module
// do.
func RunLimits(t *testing.T, newStore NewStore) {
	t.Run("Limits", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if l, p := eventsource.LimitsOf(s), eventsource.PortableLimits(); !l.Covers(p) {
			t.Fatalf("the store's limits %+v do not cover the portable limits %+v", l, p)
		}
		testLimits(t, Features{}, s)
	})
}

// limitCase is one declared limit: build returns an append whose measure
// (bytes, keys, records) is n, the rest of it small.
type limitCase struct {
	name  string
	limit int
	also  error // a second sentinel a refusal matches (an identifier too long is invalid too)
	build func(n int) (stream string, recs []eventsource.Record)
}

// testLimits checks each limit the store declares (eventsource.LimitsOf):
// an append at the limit is accepted and read back intact; one a byte (a
// key, a record) over it is refused with ErrTooLarge, stores nothing (the
// stream's version and the global log are unchanged) and does not panic.
// Then, if the store's limits cover eventsource.PortableLimits, it checks
// that one record at every portable per-record limit at once is accepted.
func testLimits(t *testing.T, _ Features, s eventsource.Store) {
	l := eventsource.LimitsOf(s)
	t.Logf("declared limits: %+v", l)
	if l != l.Normalize() {
		t.Fatalf("LimitsOf = %+v, not normalized (%+v)", l, l.Normalize())
	}
	one := func(r eventsource.Record) []eventsource.Record { return []eventsource.Record{r} }
	cases := []limitCase{
		{"StreamIDLength", l.MaxStreamIDLength, eventsource.ErrInvalidStreamID, func(n int) (string, []eventsource.Record) {
			return strings.Repeat("s", n), one(eventsource.Record{Type: "S"})
		}},
		{"EventIDLength", l.MaxEventIDLength, eventsource.ErrInvalidEvent, func(n int) (string, []eventsource.Record) {
			return "limit-event-id", one(eventsource.Record{Type: "E", EventID: strings.Repeat("e", n)})
		}},
		{"TypeLength", l.MaxTypeLength, eventsource.ErrInvalidEvent, func(n int) (string, []eventsource.Record) {
			return "limit-type", one(eventsource.Record{Type: strings.Repeat("t", n)})
		}},
		{"CodecLength", l.MaxTypeLength, eventsource.ErrInvalidEvent, func(n int) (string, []eventsource.Record) {
			return "limit-codec", one(eventsource.Record{Type: "C", Codec: strings.Repeat("c", n)})
		}},
		{"MetadataKeyLength", l.MaxMetadataKeyLength, eventsource.ErrInvalidEvent, func(n int) (string, []eventsource.Record) {
			return "limit-metadata-key", one(eventsource.Record{Type: "K", Metadata: map[string]string{strings.Repeat("k", n): "v"}})
		}},
		{"DataBytes", l.MaxDataBytes, nil, func(n int) (string, []eventsource.Record) {
			return "limit-data", one(eventsource.Record{Type: "D", Data: escapableData(n)})
		}},
		{"MetadataBytes", l.MaxMetadataBytes, nil, func(n int) (string, []eventsource.Record) {
			return "limit-metadata", one(eventsource.Record{Type: "M", Metadata: map[string]string{"m": escapable(n - 1)}})
		}},
		{"MetadataKeys", l.MaxMetadataKeys, nil, func(n int) (string, []eventsource.Record) {
			md := make(map[string]string, n)
			for i := range n {
				md[fmt.Sprintf("k%d", i)] = ""
			}
			return "limit-metadata-keys", one(eventsource.Record{Type: "K", Metadata: md})
		}},
		{"RecordsPerAppend", l.MaxRecordsPerAppend, nil, func(n int) (string, []eventsource.Record) {
			recs := make([]eventsource.Record, n)
			for i := range recs {
				recs[i] = eventsource.Record{Type: "R"}
			}
			return "limit-records", recs
		}},
		{"AppendBytes", l.MaxAppendBytes, nil, fillAppend(l)},
	}
	for _, c := range cases {
		start := time.Now()
		at, atRecs := c.build(c.limit)
		over, overRecs := c.build(c.limit + 1)
		// The append at the limit is within every declared limit, the one
		// past it is not: if not, the declaration cannot be reached.
		if err := storekit.ValidateAppend(at, eventsource.NoStream, clone(atRecs), l); err != nil {
			t.Fatalf("%s: an append at the declared limit %d is outside the store's other limits: %v", c.name, c.limit, err)
		}
		if err := storekit.ValidateAppend(over, eventsource.NoStream, clone(overRecs), l); !errors.Is(err, eventsource.ErrTooLarge) {
			t.Fatalf("%s: the test's append past the limit is not too large: %v", c.name, err)
		}
		res, err := appendNoPanic(t, s, at, eventsource.NoStream, atRecs)
		if err != nil {
			t.Fatalf("%s: append at the limit (%d): %v", c.name, c.limit, err)
		}
		got := readStream(t, s, at, 1, 0)
		if len(got) != len(atRecs) {
			t.Fatalf("%s: read back %d records, appended %d", c.name, len(got), len(atRecs))
		}
		for i := range got {
			want := atRecs[i]
			if want.EventID == "" {
				want.EventID = got[i].EventID
			}
			sameRecord(t, got[i], want)
		}
		version := int64(len(atRecs))
		if over != at {
			version = 0
		}
		_, err = appendNoPanic(t, s, over, eventsource.Exact(version), overRecs)
		if !errors.Is(err, eventsource.ErrTooLarge) || c.also != nil && !errors.Is(err, c.also) {
			want := "ErrTooLarge"
			if c.also != nil {
				want += " and " + c.also.Error()
			}
			t.Fatalf("%s: append past the limit (%d): %v, want %s", c.name, c.limit+1, err, want)
		}
		if over == at {
			if tail := readStream(t, s, at, version+1, 0); len(tail) != 0 {
				t.Fatalf("%s: the refused append stored %d records in %q", c.name, len(tail), at)
			}
		}
		if tail := readAll(t, s, res.LastPosition+1, eventsource.Filter{}); len(tail) != 0 {
			t.Fatalf("%s: the refused append left %d records in the global log", c.name, len(tail))
		}
		t.Logf("%s: %d accepted, %d refused (%v)", c.name, c.limit, c.limit+1, time.Since(start).Round(time.Millisecond))
	}
	p := eventsource.PortableLimits()
	if !l.Covers(p) {
		t.Logf("the store's limits are below the portable ones: no test of a record at every portable limit")
		return
	}
	r, stream := portableRecord(p), strings.Repeat("p", p.MaxStreamIDLength)
	if _, err := appendNoPanic(t, s, stream, eventsource.NoStream, one(r)); err != nil {
		t.Fatalf("a record at every portable limit: %v", err)
	}
	got := readStream(t, s, stream, 1, 0)
	if len(got) != 1 {
		t.Fatalf("a record at every portable limit: read back %d records", len(got))
	}
	sameRecord(t, got[0], r)
}

// appendNoPanic appends, turning a panic into a test failure.
func appendNoPanic(t *testing.T, s eventsource.Store, stream string, ev eventsource.ExpectedVersion, recs []eventsource.Record) (res eventsource.AppendResult, err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("Append(%d-byte stream ID, %s, %d records) panicked: %v", len(stream), ev, len(recs), p)
		}
	}()
	// An append at the limits is large (65,536 records, 64 MiB): under the
	// race detector and a loaded CI machine it may take minutes, and this
	// test is about limits, not speed.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return s.Append(ctx, stream, ev, recs)
}

// fillAppend builds appends of exactly n bytes (eventsource.AppendSize) of
// records with data, each at most MaxDataBytes-1, so that the byte past the
// limit goes into a record that can take it without reaching MaxDataBytes;
// the number of records is the one that fits the limit.
func fillAppend(l eventsource.Limits) func(n int) (string, []eventsource.Record) {
	base := eventsource.AppendSize([]eventsource.Record{{Type: "A"}})
	per := max(l.MaxDataBytes-1, 0)
	k := (l.MaxAppendBytes + base + per - 1) / (base + per)
	return func(n int) (string, []eventsource.Record) {
		data := n - k*base
		recs := make([]eventsource.Record, k)
		for i := range recs {
			d := data / k
			if i < data%k {
				d++
			}
			recs[i] = eventsource.Record{Type: "A", Data: pattern(d)}
		}
		return "limit-append", recs
	}
}

// pattern returns n bytes cycling through every byte value.
func pattern(n int) []byte {
	b := make([]byte, max(n, 0))
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// escapableData returns n bytes: every byte value, then bytes that SQL
// string literals escape into two (MySQL with interpolated parameters).
func escapableData(n int) []byte {
	const worst = "\x00'\"\\\n\r\x1a"
	b := pattern(n)
	for i := 256; i < len(b); i++ {
		b[i] = worst[i%len(worst)]
	}
	return b
}

// escapable returns n bytes of UTF-8 that JSON escapes into many: SQL
// stores keep metadata as JSON, and must take the worst case.
func escapable(n int) string {
	const worst = "\x01\"\\<>&\n\x1f"
	var b strings.Builder
	for i := range max(n, 0) {
		b.WriteByte(worst[i%len(worst)])
	}
	return b.String()
}

func clone(recs []eventsource.Record) []eventsource.Record {
	return append([]eventsource.Record(nil), recs...)
}

// portableRecord is one record at every per-record limit of p at once: the
// largest record valid on every store.
func portableRecord(p eventsource.Limits) eventsource.Record {
	md := make(map[string]string, p.MaxMetadataKeys)
	size := 0
	for i := range p.MaxMetadataKeys - 1 {
		k := fmt.Sprintf("k%d", i)
		md[k] = ""
		size += len(k)
	}
	long := strings.Repeat("k", p.MaxMetadataKeyLength)
	md[long] = escapable(p.MaxMetadataBytes - size - len(long))
	return eventsource.Record{
		EventID:  strings.Repeat("i", p.MaxEventIDLength),
		Type:     strings.Repeat("t", p.MaxTypeLength),
		Codec:    strings.Repeat("c", p.MaxTypeLength),
		Data:     bytes.Repeat([]byte{0xff, 0}, p.MaxDataBytes/2),
		Metadata: md,
	}
}

package eventsource_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

func TestPortableLimits(t *testing.T) {
	p := eventsource.PortableLimits()
	if n := p.Normalize(); n != p {
		t.Fatalf("PortableLimits are not normalized: %+v, normalized %+v", p, n)
	}
	if (eventsource.Limits{}).Normalize() != p {
		t.Fatal("the zero Limits do not normalize to the portable ones")
	}
	// One record at every per-record limit at once fits one append.
	md := map[string]string{}
	size := 0
	for i := range p.MaxMetadataKeys - 1 {
		k := fmt.Sprint(i)
		md[k] = ""
		size += len(k)
	}
	md[strings.Repeat("k", p.MaxMetadataKeyLength)] = strings.Repeat("v", p.MaxMetadataBytes-size-p.MaxMetadataKeyLength)
	r := eventsource.Record{
		EventID: strings.Repeat("i", p.MaxEventIDLength), Type: strings.Repeat("t", p.MaxTypeLength),
		Codec: strings.Repeat("c", p.MaxTypeLength), Data: make([]byte, p.MaxDataBytes), Metadata: md,
	}
	if err := storekit.ValidateAppend(strings.Repeat("s", p.MaxStreamIDLength), eventsource.Any, []eventsource.Record{r}, p); err != nil {
		t.Fatalf("a record at every portable limit: %v", err)
	}
}

func TestNormalize(t *testing.T) {
	l := eventsource.Limits{MaxDataBytes: 1 << 30, MaxRecordsPerAppend: 1 << 20, MaxAppendBytes: 1000, MaxStreamIDLength: 1000, MaxEventIDLength: 10}.Normalize()
	want := eventsource.PortableLimits()
	want.MaxAppendBytes = 1000
	want.MaxDataBytes = 1000 - 53         // the smallest record takes 53
	want.MaxMetadataBytes = 1000 - 53 - 8 // and a pair 8 more
	want.MaxRecordsPerAppend = 1000 / 53
	want.MaxEventIDLength = 10
	if l != want {
		t.Fatalf("Normalize = %+v, want %+v", l, want)
	}
	if p := eventsource.PortableLimits(); l.Covers(p) || !p.Covers(l) || !p.Covers(p) {
		t.Fatalf("Covers: %v %v %v, want false true true", l.Covers(p), p.Covers(l), p.Covers(p))
	}
}

func TestAppendSize(t *testing.T) {
	recs := []eventsource.Record{
		{Type: "T"}, // generated ID: 36
		{EventID: "id", Type: "Type", Codec: "json", Data: []byte("data"), Metadata: map[string]string{"k": "vv", "kk": ""}},
	}
	want := (16 + 36 + 1) + (16 + 2 + 4 + 4 + 4 + (8 + 1 + 2) + (8 + 2))
	if got := eventsource.AppendSize(recs); got != want {
		t.Fatalf("AppendSize = %d, want %d", got, want)
	}
}

// TestValidateAppendLimits: each limit is refused one past it with
// ErrTooLarge (and identifiers with their own sentinel too), accepted at it.
func TestValidateAppendLimits(t *testing.T) {
	l := eventsource.Limits{
		MaxDataBytes: 10, MaxMetadataBytes: 12, MaxMetadataKeys: 2, MaxRecordsPerAppend: 3, MaxAppendBytes: 1000,
		MaxStreamIDLength: 5, MaxEventIDLength: 6, MaxTypeLength: 7, MaxMetadataKeyLength: 8,
	}
	type build func(n int) (string, []eventsource.Record)
	one := func(r eventsource.Record) []eventsource.Record { return []eventsource.Record{r} }
	cases := []struct {
		name  string
		limit int
		also  error
		build build
	}{
		{"stream ID", 5, eventsource.ErrInvalidStreamID, func(n int) (string, []eventsource.Record) {
			return strings.Repeat("s", n), one(eventsource.Record{Type: "T"})
		}},
		{"event ID", 6, eventsource.ErrInvalidEvent, func(n int) (string, []eventsource.Record) {
			return "s", one(eventsource.Record{Type: "T", EventID: strings.Repeat("e", n)})
		}},
		{"type", 7, eventsource.ErrInvalidEvent, func(n int) (string, []eventsource.Record) {
			return "s", one(eventsource.Record{Type: strings.Repeat("t", n)})
		}},
		{"codec", 7, eventsource.ErrInvalidEvent, func(n int) (string, []eventsource.Record) {
			return "s", one(eventsource.Record{Type: "T", Codec: strings.Repeat("c", n)})
		}},
		{"metadata key", 8, eventsource.ErrInvalidEvent, func(n int) (string, []eventsource.Record) {
			return "s", one(eventsource.Record{Type: "T", Metadata: map[string]string{strings.Repeat("k", n): ""}})
		}},
		{"data", 10, nil, func(n int) (string, []eventsource.Record) {
			return "s", one(eventsource.Record{Type: "T", Data: make([]byte, n)})
		}},
		{"metadata bytes", 12, nil, func(n int) (string, []eventsource.Record) {
			return "s", one(eventsource.Record{Type: "T", Metadata: map[string]string{"k": strings.Repeat("v", n-1)}})
		}},
		{"metadata keys", 2, nil, func(n int) (string, []eventsource.Record) {
			md := map[string]string{}
			for i := range n {
				md[fmt.Sprint(i)] = ""
			}
			return "s", one(eventsource.Record{Type: "T", Metadata: md})
		}},
		{"records", 3, nil, func(n int) (string, []eventsource.Record) {
			return "s", make([]eventsource.Record, n)
		}},
	}
	for _, c := range cases {
		stream, recs := c.build(c.limit)
		for i := range recs {
			if recs[i].Type == "" {
				recs[i].Type = "T"
			}
		}
		if err := storekit.ValidateAppend(stream, eventsource.Any, recs, l); err != nil {
			t.Fatalf("%s at the limit: %v", c.name, err)
		}
		stream, recs = c.build(c.limit + 1)
		for i := range recs {
			if recs[i].Type == "" {
				recs[i].Type = "T"
			}
		}
		err := storekit.ValidateAppend(stream, eventsource.Any, recs, l)
		if !errors.Is(err, eventsource.ErrTooLarge) || c.also != nil && !errors.Is(err, c.also) {
			t.Fatalf("%s past the limit: %v, want ErrTooLarge (and %v)", c.name, err, c.also)
		}
	}
	// Two records of 53 bytes and data: 200 bytes in all.
	l = eventsource.Limits{MaxAppendBytes: 200}
	for _, extra := range []int{0, 1} {
		recs := []eventsource.Record{{Type: "T", Data: make([]byte, 47)}, {Type: "T", Data: make([]byte, 47+extra)}}
		if err := storekit.ValidateAppend("s", eventsource.Any, recs, l); (err == nil) != (extra == 0) || extra == 1 && !errors.Is(err, eventsource.ErrTooLarge) {
			t.Fatalf("an append of %d bytes, at most 200: %v", eventsource.AppendSize(recs), err)
		}
	}
}

// bare is a store that declares no limits.
type bare struct{}

func (bare) Append(context.Context, string, eventsource.ExpectedVersion, []eventsource.Record) (eventsource.AppendResult, error) {
	return eventsource.AppendResult{}, nil
}

func (bare) ReadStream(context.Context, string, int64, int64) iter.Seq2[eventsource.Record, error] {
	return func(func(eventsource.Record, error) bool) {}
}

func (bare) ReadAll(context.Context, uint64, eventsource.Filter) iter.Seq2[eventsource.Record, error] {
	return func(func(eventsource.Record, error) bool) {}
}

// small declares a data limit only.
type small struct{ bare }

func (small) Limits() eventsource.Limits { return eventsource.Limits{MaxDataBytes: 100} }

func TestLimitsOf(t *testing.T) {
	if got := eventsource.LimitsOf(bare{}); got != eventsource.PortableLimits() {
		t.Fatalf("LimitsOf a store without Limits = %+v, want the portable ones", got)
	}
	want := eventsource.PortableLimits()
	want.MaxDataBytes = 100
	if got := eventsource.LimitsOf(small{}); got != want {
		t.Fatalf("LimitsOf = %+v, want %+v (normalized)", got, want)
	}
}

package storekit_test

import (
	"errors"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

func TestExactRetry(t *testing.T) {
	ids := []string{"a", "b"}
	at := func(stream string, v int64, id string) eventsource.Record {
		return eventsource.Record{StreamID: stream, Version: v, Position: uint64(10 + v), EventID: id}
	}
	stored := []eventsource.Record{at("s", 3, "a"), at("s", 4, "b")}
	for _, c := range []struct {
		name     string
		expected eventsource.ExpectedVersion
		first    eventsource.Record
		stored   []eventsource.Record
		retry    bool
	}{
		{"exact, Exact(2)", eventsource.Exact(2), stored[0], stored, true},
		{"exact, Any", eventsource.Any, stored[0], stored, true},
		{"exact, StreamExists", eventsource.StreamExists, stored[0], stored, true},
		{"expected another version", eventsource.Exact(3), stored[0], stored, false},
		{"NoStream, stored after version 2", eventsource.NoStream, stored[0], stored, false},
		{"in another stream", eventsource.Any, at("t", 3, "a"), nil, false},
		{"only the first stored", eventsource.Any, stored[0], stored[:1], false},
		{"another event after it", eventsource.Any, stored[0], []eventsource.Record{stored[0], at("s", 4, "x")}, false},
		{"a gap in the versions", eventsource.Any, stored[0], []eventsource.Record{stored[0], at("s", 5, "b")}, false},
	} {
		res, err := storekit.ExactRetry("s", c.expected, ids, c.first, c.stored)
		if c.retry {
			want := eventsource.AppendResult{StreamID: "s", FirstVersion: 3, LastVersion: 4, FirstPosition: 13, LastPosition: 14}
			if err != nil || res != want {
				t.Errorf("%s: %+v, %v; want %+v", c.name, res, err, want)
			}
		} else if !errors.Is(err, eventsource.ErrDuplicateEvent) {
			t.Errorf("%s: %+v, %v; want ErrDuplicateEvent", c.name, res, err)
		}
	}
}

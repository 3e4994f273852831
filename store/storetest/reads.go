package storetest

// Reads: the global log, filters, and iterators stopped early.

import (
	"fmt"
	"testing"

	"github.com/eventsource-go/eventsource"
)

func testGlobalLog(t *testing.T, f Features, s eventsource.Store) {
	var results []eventsource.AppendResult
	for i := 0; i < 30; i++ {
		stream := fmt.Sprintf("log-%d", i%4)
		results = append(results, mustAppend(t, s, stream, eventsource.Any, recs(1+i%3, "Logged")...))
	}
	all := readAll(t, s, 0, eventsource.Filter{})
	total := 0
	for _, r := range results {
		total += int(r.LastVersion - r.FirstVersion + 1)
	}
	if len(all) != total {
		t.Fatalf("ReadAll: %d records, appended %d", len(all), total)
	}
	byPos := map[uint64]eventsource.Record{}
	for i, r := range all {
		if i > 0 && r.Position <= all[i-1].Position {
			t.Fatalf("positions not increasing: %d then %d", all[i-1].Position, r.Position)
		}
		byPos[r.Position] = r
	}
	// Appends that followed one another are in that order in the log, and
	// each result names positions that hold its records.
	for i, res := range results {
		first, last := byPos[res.FirstPosition], byPos[res.LastPosition]
		if first.StreamID != res.StreamID || first.Version != res.FirstVersion || last.Version != res.LastVersion {
			t.Fatalf("append %d: result %+v does not match the log", i, res)
		}
		if i > 0 && res.FirstPosition <= results[i-1].LastPosition {
			t.Fatalf("append %d starts at %d, before the previous one ended (%d)", i, res.FirstPosition, results[i-1].LastPosition)
		}
	}
	// Reading from a position returns exactly the tail.
	for _, k := range []int{0, 1, len(all) / 2, len(all) - 1} {
		tail := readAll(t, s, all[k].Position, eventsource.Filter{})
		if len(tail) != len(all)-k || tail[0].Position != all[k].Position {
			t.Fatalf("ReadAll(%d): %d records, want %d", all[k].Position, len(tail), len(all)-k)
		}
		after := readAll(t, s, all[k].Position+1, eventsource.Filter{})
		if len(after) != len(all)-k-1 {
			t.Fatalf("ReadAll(%d): %d records, want %d", all[k].Position+1, len(after), len(all)-k-1)
		}
	}
	if tail := readAll(t, s, all[len(all)-1].Position+1, eventsource.Filter{}); len(tail) != 0 {
		t.Fatalf("ReadAll past the end: %d records", len(tail))
	}
}

func testFilters(t *testing.T, f Features, s eventsource.Store) {
	type seed struct{ stream, typ, tenant string }
	seeds := []seed{
		{"user-1", "UserCreated", "a"}, {"user-2", "UserCreated", "b"}, {"user-1", "UserRenamed", "a"},
		{"order-1", "OrderPlaced", "a"}, {"users-1", "UserCreated", "b"}, {"order-2", "OrderPlaced", "b"},
		{"user-1", "UserRenamed", "b"}, {"user-10", "UserCreated", "a"},
	}
	for _, sd := range seeds {
		r := eventsource.Record{Type: sd.typ, Data: []byte("{}"), Metadata: map[string]string{"tenant": sd.tenant, "app": "shop"}}
		mustAppend(t, s, sd.stream, eventsource.Any, r)
	}
	cases := []struct {
		name   string
		filter eventsource.Filter
	}{
		{"all", eventsource.Filter{}},
		{"one stream", eventsource.Filter{Streams: []string{"user-1"}}},
		{"two streams", eventsource.Filter{Streams: []string{"user-1", "order-2"}}},
		{"category", eventsource.Filter{StreamPrefixes: []string{"user-"}}},
		{"categories", eventsource.Filter{StreamPrefixes: []string{"user-", "order-"}}},
		{"stream or category", eventsource.Filter{Streams: []string{"users-1"}, StreamPrefixes: []string{"order-"}}},
		{"type", eventsource.Filter{Types: []string{"UserCreated"}}},
		{"types", eventsource.Filter{Types: []string{"UserRenamed", "OrderPlaced"}}},
		{"metadata", eventsource.Filter{Metadata: map[string]string{"tenant": "a"}}},
		{"metadata two keys", eventsource.Filter{Metadata: map[string]string{"tenant": "b", "app": "shop"}}},
		{"metadata missing key", eventsource.Filter{Metadata: map[string]string{"nope": "a"}}},
		{"everything", eventsource.Filter{StreamPrefixes: []string{"user-"}, Types: []string{"UserCreated"}, Metadata: map[string]string{"tenant": "a"}}},
		{"prefix with LIKE characters", eventsource.Filter{StreamPrefixes: []string{"user_"}}},
		{"prefix with percent", eventsource.Filter{StreamPrefixes: []string{"%"}}},
		{"no match", eventsource.Filter{Types: []string{"Nothing"}}},
	}
	all := readAll(t, s, 0, eventsource.Filter{})
	if len(all) != len(seeds) {
		t.Fatalf("ReadAll: %d records, want %d", len(all), len(seeds))
	}
	for _, c := range cases {
		var want []uint64
		for i := range all {
			if c.filter.Match(&all[i]) {
				want = append(want, all[i].Position)
			}
		}
		got := readAll(t, s, 0, c.filter)
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d", c.name, len(got), len(want))
		}
		for i := range got {
			if got[i].Position != want[i] {
				t.Fatalf("%s: record %d at position %d, want %d", c.name, i, got[i].Position, want[i])
			}
		}
		// From the middle, too.
		if len(want) > 1 {
			if mid := readAll(t, s, want[1], c.filter); len(mid) != len(want)-1 {
				t.Fatalf("%s from %d: %d records, want %d", c.name, want[1], len(mid), len(want)-1)
			}
		}
	}
	if n := len(readAll(t, s, 0, eventsource.Filter{Streams: []string{"user-1"}})); n != 3 {
		t.Fatalf("filter by stream user-1 matched %d, want 3", n)
	}
	if n := len(readAll(t, s, 0, eventsource.Filter{StreamPrefixes: []string{"user-"}})); n != 5 {
		t.Fatalf("category user- matched %d, want 5", n)
	}
}

func testEarlyBreak(t *testing.T, f Features, s eventsource.Store) {
	mustAppend(t, s, "break-1", eventsource.NoStream, recs(700, "B")...)
	// Stopping an iteration early must release what it holds: do it more
	// times than any pool has connections.
	for i := 0; i < 40; i++ {
		for r, err := range s.ReadStream(ctxFor(t), "break-1", 1, 0) {
			if err != nil || r.Version != 1 {
				t.Fatalf("first record: %v %d", err, r.Version)
			}
			break
		}
		for _, err := range s.ReadAll(ctxFor(t), 0, eventsource.Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if got := readStream(t, s, "break-1", 1, 0); len(got) != 700 {
		t.Fatalf("read %d records, want 700", len(got))
	}
}

package nats_test

import (
	"errors"
	"regexp"
	"slices"
	"testing"

	"github.com/eventsource-go/eventsource"
	esnats "github.com/eventsource-go/eventsource/store/nats"
)

var uuidV8 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestGeneratedIDLayout(t *testing.T) {
	places := []struct {
		seq uint64
		idx int
	}{{1, 0}, {1, 1}, {1, 15}, {1, 16}, {1, 65535}, {2, 0}, {255, 7}, {256, 0}, {1<<32 + 5, 300}, {1<<48 - 1, 65535}}
	var ids []string
	for _, p := range places {
		id := esnats.GeneratedID("user-1", 7, p.seq, p.idx)
		if !uuidV8.MatchString(id) {
			t.Fatalf("GeneratedID(%d, %d) = %q: not a canonical UUID version 8", p.seq, p.idx, id)
		}
		seq, idx, ok := esnats.ParseGeneratedID(id)
		if !ok || seq != p.seq || idx != p.idx {
			t.Fatalf("ParseGeneratedID(%q) = %d, %d, %v; want %d, %d", id, seq, idx, ok, p.seq, p.idx)
		}
		ids = append(ids, id)
	}
	if !slices.IsSorted(ids) {
		t.Fatalf("generated IDs do not sort in position order: %v", ids)
	}
	// Stored events keep these IDs forever: the layout and the check bits
	// (FNV-1a) must never change.
	for _, g := range []struct {
		stream  string
		version int64
		seq     uint64
		idx     int
		id      string
	}{
		{"user-1", 3, 42, 1, "00000000-002a-8000-8739-54e846e95dd5"},
		{"é", 1 << 40, 1 << 47, 65535, "80000000-0000-8fff-bf94-0c88764769da"},
	} {
		if got := esnats.GeneratedID(g.stream, g.version, g.seq, g.idx); got != g.id {
			t.Fatalf("GeneratedID(%q, %d, %d, %d) = %s, stored events have %s", g.stream, g.version, g.seq, g.idx, got, g.id)
		}
	}
	if a, b := esnats.GeneratedID("a", 12, 9, 0), esnats.GeneratedID("a1", 2, 9, 0); a == b {
		t.Fatalf("(a, 12) and (a1, 2) at one place share the ID %q", a)
	}
	if a, b := esnats.GeneratedID("s", 1, 9, 0), esnats.GeneratedID("s", 2, 9, 0); a == b {
		t.Fatalf("two versions at one place share the ID %q", a)
	}
	for _, other := range []string{
		"", eventsource.NewEventID(), "not-a-uuid",
		"00000000-0001-8000-8000-000000000000x",
		"00000000-0001-8000-C000-000000000000", // variant 11
		"00000000-0001-8000-0000-000000000000", // variant 0
		"00000000-0001-7000-8000-000000000000", // version 7
		"0000000A-0001-8000-8000-000000000000", // upper case
		"00000000-0000-8000-8000-000000000000", // sequence 0
		"00000000+0001-8000-8000-000000000000",
	} {
		if seq, idx, ok := esnats.ParseGeneratedID(other); ok {
			t.Fatalf("ParseGeneratedID(%q) = %d, %d, true; want false", other, seq, idx)
		}
	}
}

func FuzzParseGeneratedID(f *testing.F) {
	f.Add(esnats.GeneratedID("s", 1, 1, 0))
	f.Add(eventsource.NewEventID())
	f.Fuzz(func(t *testing.T, id string) {
		seq, idx, ok := esnats.ParseGeneratedID(id)
		if !ok {
			return
		}
		if idx < 0 || idx > 65535 || seq == 0 || seq >= 1<<48 {
			t.Fatalf("ParseGeneratedID(%q) = %d, %d", id, seq, idx)
		}
		again := esnats.GeneratedID("s", 1, seq, idx)
		if s2, i2, ok2 := esnats.ParseGeneratedID(again); !ok2 || s2 != seq || i2 != idx || again[:18] != id[:18] {
			t.Fatalf("ParseGeneratedID(%q) = %d, %d, but that place's ID %q parses as %d, %d, %v", id, seq, idx, again, s2, i2, ok2)
		}
	})
}

// TestGeneratedIDs checks the IDs the store generates on a real server:
// stable across read paths, in position order, and checked when supplied
// again, also when copied from another store.
func TestGeneratedIDs(t *testing.T) {
	for name, tgt := range targets(t) {
		t.Run(name, func(t *testing.T) {
			tg := tgt(t)
			s, other := newStore(t, tg), newStore(t, tg)
			ctx := ctxFor(t)
			for i := 0; i < 3; i++ {
				if _, err := s.Append(ctx, "gen", eventsource.Any, []eventsource.Record{rec("E", "1"), rec("E", "2")}); err != nil {
					t.Fatal(err)
				}
			}
			byStream := readAll(t, s, "gen")
			var byLog []eventsource.Record
			for r, err := range s.ReadAll(ctx, 0, eventsource.Filter{}) {
				if err != nil {
					t.Fatal(err)
				}
				byLog = append(byLog, r)
			}
			if len(byStream) != 6 || len(byLog) != 6 {
				t.Fatalf("read %d records by stream and %d by log, want 6", len(byStream), len(byLog))
			}
			var ids []string
			for i, r := range byStream {
				if !uuidV8.MatchString(r.EventID) || r.EventID != byLog[i].EventID {
					t.Fatalf("record %d: ID %q by stream, %q by log", i, r.EventID, byLog[i].EventID)
				}
				ids = append(ids, r.EventID)
			}
			if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != 6 {
				t.Fatalf("generated IDs not distinct and in position order: %v", ids)
			}

			// Another store on the same server has its own places: an ID
			// copied from there is an ordinary supplied ID here, claimed once.
			if _, err := other.Append(ctx, "copy", eventsource.NoStream, []eventsource.Record{{Type: "E", Data: []byte("x"), EventID: ids[5]}}); err != nil {
				t.Fatalf("an ID copied from another store: %v", err)
			}
			_, err := other.Append(ctx, "copy-2", eventsource.NoStream, []eventsource.Record{{Type: "E", Data: []byte("x"), EventID: ids[5]}})
			if !errors.Is(err, eventsource.ErrDuplicateEvent) {
				t.Fatalf("the copied ID supplied twice: %v, want ErrDuplicateEvent", err)
			}

			// Deleting the stream keeps its generated IDs taken (the
			// delete is soft); scavenging its commits frees them.
			if err := s.DeleteStream(ctx, "gen", eventsource.Any); err != nil {
				t.Fatal(err)
			}
			again := []eventsource.Record{{Type: "E", Data: []byte("x"), EventID: ids[0]}}
			if _, err := s.Append(ctx, "gen-2", eventsource.NoStream, again); !errors.Is(err, eventsource.ErrDuplicateEvent) {
				t.Fatalf("an ID of a deleted stream supplied again before a scavenge: %v, want ErrDuplicateEvent", err)
			}
			if res, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil || res.Removed != 6 {
				t.Fatalf("Scavenge = %+v, %v; want 6 removed", res, err)
			}
			if _, err := s.Append(ctx, "gen-2", eventsource.NoStream, again); err != nil {
				t.Fatalf("an ID of a scavenged stream supplied again: %v", err)
			}
		})
	}
}

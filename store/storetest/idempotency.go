package storetest

// Idempotency: a retried append with the same event IDs gets the original result; anything else with a stored ID is a duplicate.

import (
	"errors"
	"testing"

	"github.com/eventsource-go/eventsource"
)

func withIDs(ids ...string) []eventsource.Record {
	out := make([]eventsource.Record, len(ids))
	for i, id := range ids {
		out[i] = rec("Idem", `{"id":"`+id+`"}`)
		out[i].EventID = id
	}
	return out
}

func testIdempotency(t *testing.T, f Features, s eventsource.Store) {
	ctx := ctxFor(t)
	first := mustAppend(t, s, "idem-1", eventsource.NoStream, withIDs("idem-a", "idem-b")...)
	again := mustAppend(t, s, "idem-1", eventsource.NoStream, withIDs("idem-a", "idem-b")...)
	if again != first {
		t.Fatalf("retry returned %+v, first append %+v", again, first)
	}
	third := mustAppend(t, s, "idem-1", eventsource.Exact(2), withIDs("idem-c")...)
	if retry := mustAppend(t, s, "idem-1", eventsource.Exact(2), withIDs("idem-c")...); retry != third {
		t.Fatalf("retry at Exact(2) returned %+v, want %+v", retry, third)
	}
	if retry := mustAppend(t, s, "idem-1", eventsource.Any, withIDs("idem-a", "idem-b")...); retry != first {
		t.Fatalf("retry with Any returned %+v, want %+v", retry, first)
	}
	bad := []struct {
		name   string
		stream string
		ev     eventsource.ExpectedVersion
		ids    []string
	}{
		{"partly stored", "idem-1", eventsource.Exact(3), []string{"idem-c", "idem-d"}},
		{"new then stored", "idem-1", eventsource.Exact(3), []string{"idem-d", "idem-a"}},
		{"other order", "idem-1", eventsource.NoStream, []string{"idem-b", "idem-a"}},
		{"subset", "idem-1", eventsource.Exact(1), []string{"idem-b", "idem-c", "idem-e"}},
		{"other stream", "idem-2", eventsource.NoStream, []string{"idem-a"}},
		{"twice in one append", "idem-3", eventsource.NoStream, []string{"idem-x", "idem-x"}},
	}
	for _, b := range bad {
		_, err := s.Append(ctx, b.stream, b.ev, withIDs(b.ids...))
		if !errors.Is(err, eventsource.ErrDuplicateEvent) {
			t.Fatalf("%s: Append = %v, want ErrDuplicateEvent", b.name, err)
		}
	}
	// IDs the store generated, read back and supplied again: a retry in
	// their own stream at their own place, a duplicate anywhere else.
	gen := mustAppend(t, s, "idem-gen", eventsource.NoStream, rec("Gen", `{"n":1}`), rec("Gen", `{"n":2}`))
	stored := readStream(t, s, "idem-gen", 1, 0)
	if len(stored) != 2 || stored[0].EventID == stored[1].EventID {
		t.Fatalf("idem-gen holds %d records with IDs %v, want 2 with distinct IDs", len(stored), stored)
	}
	copied := []eventsource.Record{stored[0], stored[1]}
	for i := range copied {
		copied[i].StreamID, copied[i].Version, copied[i].Position = "", 0, 0
	}
	if retry := mustAppend(t, s, "idem-gen", eventsource.NoStream, copied...); retry != gen {
		t.Fatalf("generated IDs supplied again at their place: %+v, want the original %+v", retry, gen)
	}
	for _, b := range []struct {
		name   string
		stream string
		ev     eventsource.ExpectedVersion
		recs   []eventsource.Record
	}{
		{"generated ID in another stream", "idem-gen-2", eventsource.NoStream, copied[1:]},
		{"generated ID later in its stream", "idem-gen", eventsource.Exact(2), copied[:1]},
		{"generated IDs with a new one", "idem-gen", eventsource.NoStream, append(copied[:2:2], rec("Gen", `{"n":3}`))},
	} {
		if _, err := s.Append(ctx, b.stream, b.ev, b.recs); !errors.Is(err, eventsource.ErrDuplicateEvent) {
			t.Fatalf("%s: Append = %v, want ErrDuplicateEvent", b.name, err)
		}
	}
	if got := readStream(t, s, "idem-gen", 1, 0); len(got) != 2 {
		t.Fatalf("idem-gen holds %d records after refused copies, want 2", len(got))
	}
	// A conflicting append with new IDs is a plain conflict.
	if _, err := s.Append(ctx, "idem-1", eventsource.NoStream, withIDs("idem-z")); !errors.Is(err, eventsource.ErrConcurrency) {
		t.Fatalf("new IDs at a stale version: %v, want ErrConcurrency", err)
	}
	got := readStream(t, s, "idem-1", 1, 0)
	if len(got) != 3 || got[0].EventID != "idem-a" || got[1].EventID != "idem-b" || got[2].EventID != "idem-c" {
		t.Fatalf("stream holds %d records after retries, want a, b, c once each", len(got))
	}
	for _, st := range []string{"idem-2", "idem-3", "idem-gen-2"} {
		if got := readStream(t, s, st, 1, 0); len(got) != 0 {
			t.Fatalf("%s holds %d records after a refused append", st, len(got))
		}
	}
	if n := len(readAll(t, s, 0, eventsource.Filter{})); n != 5 {
		t.Fatalf("global log holds %d records, want 5 (idem-1's 3 and idem-gen's 2)", n)
	}
}

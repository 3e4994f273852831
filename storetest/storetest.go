// Package storetest is the conformance suite of eventsource stores: every
// invariant of the store contract as a subtest. Each store's own tests call
// Run against the real server; a third-party store can run it too.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Features{Notify: true}, func(t *testing.T) eventsource.Store {
//			return newEmptyStore(t) // a fresh, empty store; released with t.Cleanup
//		})
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/storekit"
)

// Features declares what a store claims beyond the core contract; the suite
// tests exactly that.
type Features struct {
	Notify       bool // implements eventsource.Notifier
	Head         bool // implements eventsource.HeadReader
	ListStreams  bool // implements eventsource.StreamLister
	DeleteStream bool // implements eventsource.StreamDeleter
	Reservations bool // implements eventsource.Reserver
	// CommitHook: the store calls the internal commit hook between writing
	// and committing an append (stores of this module do), so the suite can
	// make commits finish out of order and cancel appends mid-flight.
	CommitHook bool
	// Writers and AppendsPerWriter size the concurrent-writers test
	// (8 and 40 when 0).
	Writers, AppendsPerWriter int
}

// NewStore returns a fresh, empty store for one test, and registers its
// release with t.Cleanup.
type NewStore func(t *testing.T) eventsource.Store

// Run runs the whole suite. Subtests run in parallel, each on its own store.
func Run(t *testing.T, f Features, newStore NewStore) {
	if f.Writers <= 0 {
		f.Writers = 8
	}
	if f.AppendsPerWriter <= 0 {
		f.AppendsPerWriter = 40
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Features, eventsource.Store)
		skip bool
	}{
		{"RoundTrip", testRoundTrip, false},
		{"StreamRanges", testStreamRanges, false},
		{"ExpectedVersion", testExpectedVersion, false},
		{"ConcurrentSameVersion", testConcurrentSameVersion, false},
		{"ConcurrentAny", testConcurrentAny, false},
		{"Idempotency", testIdempotency, false},
		{"AtomicAppend", testAtomicAppend, false},
		{"CancelledAppend", testCancelledAppend, false},
		{"GlobalLog", testGlobalLog, false},
		{"Filters", testFilters, false},
		{"BadInput", testBadInput, false},
		{"EarlyBreak", testEarlyBreak, false},
		{"NoMissedEvents", testNoMissedEvents, false},
		{"LiveSubscriber", testLiveSubscriber, false},
		{"Notify", testNotify, !f.Notify},
		{"Head", testHead, !f.Head},
		{"ListStreams", testListStreams, !f.ListStreams},
		{"DeleteStream", testDeleteStream, !f.DeleteStream},
		{"Reservations", testReservations, !f.Reservations},
		{"ApplyUnderContention", testApplyUnderContention, false},
		{"Limits", testLimits, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip {
				t.Skip("the store does not claim this feature")
			}
			t.Parallel()
			tc.fn(t, f, newStore(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// rec returns a record with data and one metadata pair.
func rec(typ, data string) eventsource.Record {
	return eventsource.Record{Type: typ, Codec: "json", Data: []byte(data), Metadata: map[string]string{"k": typ}}
}

func recs(n int, typ string) []eventsource.Record {
	out := make([]eventsource.Record, n)
	for i := range out {
		out[i] = rec(typ, fmt.Sprintf(`{"n":%d}`, i))
	}
	return out
}

func mustAppend(t *testing.T, s eventsource.Store, stream string, ev eventsource.ExpectedVersion, records ...eventsource.Record) eventsource.AppendResult {
	t.Helper()
	res, err := s.Append(ctxFor(t), stream, ev, records)
	if err != nil {
		t.Fatalf("Append(%q, %s, %d records): %v", stream, ev, len(records), err)
	}
	return res
}

func readStream(t *testing.T, s eventsource.Store, stream string, from, to int64) []eventsource.Record {
	t.Helper()
	var out []eventsource.Record
	for r, err := range s.ReadStream(ctxFor(t), stream, from, to) {
		if err != nil {
			t.Fatalf("ReadStream(%q, %d, %d): %v", stream, from, to, err)
		}
		out = append(out, r)
	}
	return out
}

func readAll(t *testing.T, s eventsource.Store, from uint64, f eventsource.Filter) []eventsource.Record {
	t.Helper()
	var out []eventsource.Record
	for r, err := range s.ReadAll(ctxFor(t), from, f) {
		if err != nil {
			t.Fatalf("ReadAll(%d, %+v): %v", from, f, err)
		}
		out = append(out, r)
	}
	return out
}

func sameRecord(t *testing.T, got, want eventsource.Record) {
	t.Helper()
	if got.Type != want.Type || got.Codec != want.Codec || !bytes.Equal(got.Data, want.Data) || got.EventID != want.EventID {
		t.Fatalf("read back %q/%q/%q/%q, appended %q/%q/%q/%q",
			got.Type, got.Codec, got.Data, got.EventID, want.Type, want.Codec, want.Data, want.EventID)
	}
	if len(got.Metadata) != len(want.Metadata) {
		t.Fatalf("metadata read back %v, appended %v", got.Metadata, want.Metadata)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			t.Fatalf("metadata read back %v, appended %v", got.Metadata, want.Metadata)
		}
	}
}

func testRoundTrip(t *testing.T, f Features, s eventsource.Store) {
	binary := make([]byte, 4096)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	in := []eventsource.Record{
		{Type: "Binary", Codec: "gob", Data: binary, Metadata: map[string]string{"user": "ünïcode ✓", "empty": "", "quote": `'"\`}},
		{Type: "Empty", Codec: "json", EventID: "my-own-id-1"},
		{Type: "Zeros", Data: []byte{0, 0, 0, 1}},
	}
	// The largest Data the store takes, in this append.
	l := eventsource.LimitsOf(s)
	large := min(l.MaxDataBytes, l.MaxAppendBytes-eventsource.AppendSize(in)-eventsource.AppendSize([]eventsource.Record{{Type: "Large", Codec: "json"}}))
	in = append(in, eventsource.Record{Type: "Large", Codec: "json", Data: bytes.Repeat([]byte("x"), large)})
	before := time.Now().Add(-time.Minute)
	res := mustAppend(t, s, "roundtrip-1", eventsource.NoStream, in...)
	if res.StreamID != "roundtrip-1" || res.FirstVersion != 1 || res.LastVersion != 4 {
		t.Fatalf("AppendResult = %+v, want versions 1..4 of roundtrip-1", res)
	}
	if res.FirstPosition == 0 || res.LastPosition < res.FirstPosition {
		t.Fatalf("AppendResult positions = %d..%d", res.FirstPosition, res.LastPosition)
	}
	if in[0].EventID != "" {
		t.Fatal("Append changed the caller's records")
	}
	got := readStream(t, s, "roundtrip-1", 1, 0)
	if len(got) != len(in) {
		t.Fatalf("read %d records, appended %d", len(got), len(in))
	}
	ids := map[string]bool{}
	for i, r := range got {
		want := in[i]
		want.EventID = r.EventID
		if i == 1 {
			want.EventID = "my-own-id-1"
		}
		sameRecord(t, r, want)
		if r.EventID == "" || ids[r.EventID] {
			t.Fatalf("record %d: event ID %q empty or repeated", i, r.EventID)
		}
		ids[r.EventID] = true
		if r.StreamID != "roundtrip-1" || r.Version != int64(i+1) {
			t.Fatalf("record %d: stream %q version %d", i, r.StreamID, r.Version)
		}
		if r.RecordedAt.Before(before) || r.RecordedAt.After(time.Now().Add(time.Minute)) {
			t.Fatalf("record %d: recorded at %v, not now", i, r.RecordedAt)
		}
		if i > 0 && r.Position <= got[i-1].Position {
			t.Fatalf("positions not increasing: %d then %d", got[i-1].Position, r.Position)
		}
	}
	if got[0].Position != res.FirstPosition || got[3].Position != res.LastPosition {
		t.Fatalf("positions read %d..%d, Append said %d..%d", got[0].Position, got[3].Position, res.FirstPosition, res.LastPosition)
	}
	// The global log holds the same bytes.
	all := readAll(t, s, 0, eventsource.Filter{})
	if len(all) != len(got) {
		t.Fatalf("ReadAll: %d records, want %d", len(all), len(got))
	}
	for i := range all {
		sameRecord(t, all[i], got[i])
		if all[i].Position != got[i].Position || all[i].Version != got[i].Version || all[i].StreamID != got[i].StreamID {
			t.Fatalf("ReadAll record %d differs from ReadStream's", i)
		}
	}
	// Mutating what was read changes nothing stored.
	got[0].Data[0]++
	if again := readStream(t, s, "roundtrip-1", 1, 1); again[0].Data[0] != binary[0] {
		t.Fatal("a reader's change to Data reached the store")
	}
}

func testStreamRanges(t *testing.T, f Features, s eventsource.Store) {
	const n = 1200 // crosses the batch size of every store
	for i := 0; i < n; i += 400 {
		mustAppend(t, s, "range-1", eventsource.Exact(int64(i)), recs(400, "Ranged")...)
	}
	mustAppend(t, s, "range-2", eventsource.NoStream, recs(3, "Other")...)
	all := readStream(t, s, "range-1", 1, 0)
	if len(all) != n {
		t.Fatalf("read %d records, want %d", len(all), n)
	}
	for i, r := range all {
		if r.Version != int64(i+1) || r.StreamID != "range-1" {
			t.Fatalf("record %d: %q version %d", i, r.StreamID, r.Version)
		}
	}
	cases := []struct {
		from, to    int64
		first, last int64 // 0, 0 for none
	}{
		{1, 0, 1, n}, {0, 0, 1, n}, {250, 750, 250, 750}, {n, 0, n, n}, {n + 1, 0, 0, 0},
		{5, 5, 5, 5}, {10, 3, 0, 0}, {1, 1, 1, 1}, {n - 2, n + 50, n - 2, n},
	}
	for _, c := range cases {
		got := readStream(t, s, "range-1", c.from, c.to)
		if c.first == 0 {
			if len(got) != 0 {
				t.Fatalf("ReadStream(%d, %d): %d records, want none", c.from, c.to, len(got))
			}
			continue
		}
		if int64(len(got)) != c.last-c.first+1 || got[0].Version != c.first || got[len(got)-1].Version != c.last {
			t.Fatalf("ReadStream(%d, %d): %d records, want versions %d..%d", c.from, c.to, len(got), c.first, c.last)
		}
	}
	if got := readStream(t, s, "no-such-stream", 1, 0); len(got) != 0 {
		t.Fatalf("missing stream yielded %d records", len(got))
	}
	if got := readStream(t, s, "range-", 1, 0); len(got) != 0 {
		t.Fatalf("a prefix of a stream ID read %d records", len(got))
	}
}

func testExpectedVersion(t *testing.T, f Features, s eventsource.Store) {
	ctx := ctxFor(t)
	conflict := func(stream string, ev eventsource.ExpectedVersion, actual int64) {
		t.Helper()
		_, err := s.Append(ctx, stream, ev, recs(1, "E"))
		var ce *eventsource.ConcurrencyError
		if !errors.Is(err, eventsource.ErrConcurrency) || !errors.As(err, &ce) {
			t.Fatalf("Append(%q, %s) = %v, want a *ConcurrencyError", stream, ev, err)
		}
		if ce.Stream != stream || ce.Expected != ev || ce.Actual != actual {
			t.Fatalf("ConcurrencyError = %+v, want stream %q expected %s actual %d", ce, stream, ev, actual)
		}
	}
	conflict("ev-1", eventsource.StreamExists, 0)
	conflict("ev-1", eventsource.Exact(3), 0)
	mustAppend(t, s, "ev-1", eventsource.NoStream, recs(2, "E")...)
	conflict("ev-1", eventsource.NoStream, 2)
	conflict("ev-1", eventsource.Exact(1), 2)
	conflict("ev-1", eventsource.Exact(3), 2)
	if res := mustAppend(t, s, "ev-1", eventsource.Exact(2), recs(1, "E")...); res.LastVersion != 3 {
		t.Fatalf("after Exact(2): version %d", res.LastVersion)
	}
	if res := mustAppend(t, s, "ev-1", eventsource.StreamExists, recs(2, "E")...); res.FirstVersion != 4 || res.LastVersion != 5 {
		t.Fatalf("after StreamExists: %+v", res)
	}
	if res := mustAppend(t, s, "ev-1", eventsource.Any, recs(1, "E")...); res.LastVersion != 6 {
		t.Fatalf("after Any: %+v", res)
	}
	if res := mustAppend(t, s, "ev-2", eventsource.Any, recs(1, "E")...); res.LastVersion != 1 {
		t.Fatalf("Any on a new stream: %+v", res)
	}
	if _, err := s.Append(ctx, "ev-1", eventsource.ExpectedVersion(-7), recs(1, "E")); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Fatalf("expected version -7: %v, want ErrInvalidEvent", err)
	}
	if got := readStream(t, s, "ev-1", 1, 0); len(got) != 6 {
		t.Fatalf("conflicts stored records: stream has %d, want 6", len(got))
	}
}

func testConcurrentSameVersion(t *testing.T, f Features, s eventsource.Store) {
	ctx := ctxFor(t)
	const goroutines, rounds = 12, 5
	var version int64
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		var other []error
		start := make(chan struct{})
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := s.Append(ctx, "race-1", eventsource.Exact(version), recs(2, "Raced"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, eventsource.ErrConcurrency):
					conflicts++
				default:
					other = append(other, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 || conflicts != goroutines-1 || len(other) > 0 {
			t.Fatalf("round %d: %d wins, %d conflicts, other errors %v; want 1 and %d", round, wins, conflicts, other, goroutines-1)
		}
		version += 2
	}
	got := readStream(t, s, "race-1", 1, 0)
	if int64(len(got)) != version {
		t.Fatalf("stream has %d records, want %d", len(got), version)
	}
	for i, r := range got {
		if r.Version != int64(i+1) {
			t.Fatalf("record %d has version %d", i, r.Version)
		}
	}
}

func testConcurrentAny(t *testing.T, f Features, s eventsource.Store) {
	ctx := ctxFor(t)
	const goroutines, appends = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*appends)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < appends; i++ {
				if _, err := s.Append(ctx, "any-1", eventsource.Any, recs(2, "Any")); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append(Any): %v", err)
	}
	got := readStream(t, s, "any-1", 1, 0)
	if len(got) != goroutines*appends*2 {
		t.Fatalf("stream has %d records, want %d", len(got), goroutines*appends*2)
	}
	for i, r := range got {
		if r.Version != int64(i+1) {
			t.Fatalf("record %d has version %d", i, r.Version)
		}
	}
}

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

func testAtomicAppend(t *testing.T, f Features, s eventsource.Store) {
	ctx := ctxFor(t)
	mustAppend(t, s, "atomic-1", eventsource.NoStream, recs(1, "Before")...)
	cases := []struct {
		name string
		bad  eventsource.Record
		want error
	}{
		{"oversized", eventsource.Record{Type: "Big", Data: make([]byte, eventsource.LimitsOf(s).MaxDataBytes+1)}, eventsource.ErrTooLarge},
		{"no type", eventsource.Record{Data: []byte("{}")}, eventsource.ErrInvalidEvent},
		{"bad metadata", eventsource.Record{Type: "M", Metadata: map[string]string{"k": "\xff"}}, eventsource.ErrInvalidEvent},
		{"NUL in metadata key", eventsource.Record{Type: "M", Metadata: map[string]string{"a\x00": "v"}}, eventsource.ErrInvalidEvent},
		{"long event ID", eventsource.Record{Type: "M", EventID: strings.Repeat("i", eventsource.MaxEventIDLength+1)}, eventsource.ErrInvalidEvent},
		{"other stream", eventsource.Record{Type: "M", StreamID: "atomic-2"}, eventsource.ErrInvalidEvent},
	}
	for _, c := range cases {
		batch := append(recs(2, "Good"), c.bad, rec("Good", "{}"))
		if _, err := s.Append(ctx, "atomic-1", eventsource.Exact(1), batch); !errors.Is(err, c.want) {
			t.Fatalf("%s: Append = %v, want %v", c.name, err, c.want)
		}
	}
	got := readStream(t, s, "atomic-1", 1, 0)
	if len(got) != 1 {
		t.Fatalf("refused appends left %d records, want 1", len(got))
	}
	if n := len(readAll(t, s, 0, eventsource.Filter{})); n != 1 {
		t.Fatalf("refused appends left %d records in the global log, want 1", n)
	}
	if res := mustAppend(t, s, "atomic-1", eventsource.Exact(1), recs(3, "After")...); res.LastVersion != 4 {
		t.Fatalf("append after refusals: %+v", res)
	}
}

func testCancelledAppend(t *testing.T, f Features, s eventsource.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, "cancel-1", eventsource.NoStream, recs(3, "C")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context = %v, want context.Canceled", err)
	}
	for _, err := range s.ReadStream(ctx, "cancel-1", 1, 0) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ReadStream with a cancelled context yielded %v", err)
		}
		break
	}
	if f.CommitHook {
		// Cancel after the records are written, before the commit.
		for i := 0; i < 5; i++ {
			ctx, cancel := context.WithCancel(context.Background())
			hooked := false
			ctx = storekit.WithBeforeCommit(ctx, func(context.Context) { hooked = true; cancel() })
			_, err := s.Append(ctx, "cancel-1", eventsource.Any, recs(3, "C"))
			cancel()
			if !hooked {
				t.Fatal("the store claims CommitHook but never called it")
			}
			if err == nil {
				t.Fatal("Append cancelled before its commit succeeded")
			}
		}
	}
	if got := readStream(t, s, "cancel-1", 1, 0); len(got) != 0 {
		t.Fatalf("cancelled appends left %d records", len(got))
	}
	if n := len(readAll(t, s, 0, eventsource.Filter{})); n != 0 {
		t.Fatalf("cancelled appends left %d records in the global log", n)
	}
	if res := mustAppend(t, s, "cancel-1", eventsource.NoStream, recs(2, "C")...); res.LastVersion != 2 {
		t.Fatalf("append after cancellations: %+v", res)
	}
}

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

func testBadInput(t *testing.T, f Features, s eventsource.Store) {
	ctx := ctxFor(t)
	streams := []string{"", strings.Repeat("s", eventsource.MaxStreamIDLength+1), "bad-\xff\xfe", "nul-\x00-id"}
	for _, id := range streams {
		if _, err := s.Append(ctx, id, eventsource.Any, recs(1, "E")); !errors.Is(err, eventsource.ErrInvalidStreamID) {
			t.Fatalf("Append to stream %q: %v, want ErrInvalidStreamID", id, err)
		}
		for _, err := range s.ReadStream(ctx, id, 1, 0) {
			if !errors.Is(err, eventsource.ErrInvalidStreamID) {
				t.Fatalf("ReadStream(%q) yielded %v, want ErrInvalidStreamID", id, err)
			}
		}
	}
	long := strings.Repeat("s", eventsource.MaxStreamIDLength)
	mustAppend(t, s, long, eventsource.NoStream, recs(1, "Long")...)
	if got := readStream(t, s, long, 1, 0); len(got) != 1 || got[0].StreamID != long {
		t.Fatalf("a %d-byte stream ID did not round-trip", len(long))
	}
	unicode := "ünïcøde-流-🙂"
	mustAppend(t, s, unicode, eventsource.NoStream, recs(1, "Uni")...)
	if got := readStream(t, s, unicode, 1, 0); len(got) != 1 || got[0].StreamID != unicode {
		t.Fatal("a Unicode stream ID did not round-trip")
	}
	if _, err := s.Append(ctx, "empty-1", eventsource.Any, nil); !errors.Is(err, eventsource.ErrNoEventsProduced) {
		t.Fatalf("Append of no records: %v, want ErrNoEventsProduced", err)
	}
	if _, err := s.Append(ctx, "type-1", eventsource.Any, []eventsource.Record{{Type: "T\x00"}}); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Fatalf("type with NUL: %v, want ErrInvalidEvent", err)
	}
	if _, err := s.Append(ctx, "type-1", eventsource.Any, []eventsource.Record{{Type: strings.Repeat("t", eventsource.MaxTypeLength+1)}}); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Fatalf("overlong type: %v, want ErrInvalidEvent", err)
	}
	if n := len(readAll(t, s, 0, eventsource.Filter{})); n != 2 {
		t.Fatalf("bad input left records: global log has %d, want 2", n)
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

// testNoMissedEvents is the classic trap of SQL event stores: positions are
// taken in one order and committed in another. Writers append concurrently,
// some commits held open at random, while a reader polls the global log from
// the last position it saw. It must end with every event exactly once, in
// position order.
func testNoMissedEvents(t *testing.T, f Features, s eventsource.Store) {
	ctx := ctxFor(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	written := map[string]bool{}
	errs := make(chan error, f.Writers)
	for w := 0; w < f.Writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < f.AppendsPerWriter; i++ {
				actx := ctx
				if f.CommitHook && rng.IntN(3) == 0 {
					d := time.Duration(rng.IntN(30)) * time.Millisecond
					actx = storekit.WithBeforeCommit(ctx, func(context.Context) { time.Sleep(d) })
				}
				batch := recs(1+rng.IntN(3), "Concurrent")
				for j := range batch {
					batch[j].EventID = fmt.Sprintf("w%d-a%d-e%d", w, i, j)
				}
				stream := fmt.Sprintf("conc-%d", rng.IntN(20))
				if _, err := s.Append(actx, stream, eventsource.Any, batch); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, r := range batch {
					written[r.EventID] = true
				}
				mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	seen := map[string]uint64{}
	var last uint64
	poll := func() {
		for r, err := range s.ReadAll(ctx, last+1, eventsource.Filter{}) {
			if err != nil {
				t.Fatalf("ReadAll(%d): %v", last+1, err)
			}
			if r.Position <= last {
				t.Fatalf("position %d after %d", r.Position, last)
			}
			if p, dup := seen[r.EventID]; dup {
				t.Fatalf("event %s delivered twice, at %d and %d", r.EventID, p, r.Position)
			}
			seen[r.EventID] = r.Position
			last = r.Position
		}
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
			time.Sleep(time.Millisecond)
		}
		poll()
	}
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	poll()
	missed := 0
	for id := range written {
		if _, ok := seen[id]; !ok {
			missed++
		}
	}
	if missed > 0 || len(seen) != len(written) {
		t.Fatalf("reader saw %d events, writers committed %d, %d never seen", len(seen), len(written), missed)
	}
	// The reader's view is the log's: a fresh full read agrees.
	if all := readAll(t, s, 0, eventsource.Filter{}); len(all) != len(written) {
		t.Fatalf("full read: %d records, want %d", len(all), len(written))
	}
}

// testLiveSubscriber runs a catch-up subscription (the read side's building
// block) while writers append with commits held open at random: it must
// receive every event exactly once, in position order, switching from
// history to live delivery without a gap.
func testLiveSubscriber(t *testing.T, f Features, s eventsource.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mustAppend(t, s, "live-0", eventsource.NoStream, recs(25, "History")...)
	var mu sync.Mutex
	seen := map[string]bool{}
	var last uint64
	var failure error
	got := make(chan struct{}, 1)
	sub := projection.NewSubscription(s, projection.WithPolling(time.Millisecond, 50*time.Millisecond))
	done := make(chan error, 1)
	go func() {
		done <- sub.Run(ctx, func(_ context.Context, r eventsource.Record) error {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Position <= last:
				failure = fmt.Errorf("position %d after %d", r.Position, last)
			case seen[r.EventID]:
				failure = fmt.Errorf("event %s delivered twice", r.EventID)
			}
			seen[r.EventID], last = true, r.Position
			select {
			case got <- struct{}{}:
			default:
			}
			return failure
		})
	}()
	var wg sync.WaitGroup
	for w := 0; w < f.Writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for i := 0; i < f.AppendsPerWriter/2; i++ {
				actx := ctx
				if f.CommitHook && rng.IntN(3) == 0 {
					d := time.Duration(rng.IntN(20)) * time.Millisecond
					actx = storekit.WithBeforeCommit(ctx, func(context.Context) { time.Sleep(d) })
				}
				if _, err := s.Append(actx, fmt.Sprintf("live-%d", 1+rng.IntN(10)), eventsource.Any, recs(1+rng.IntN(2), "Live")); err != nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := len(readAll(t, s, 0, eventsource.Filter{}))
	for {
		mu.Lock()
		n, bad := len(seen), failure
		mu.Unlock()
		if bad != nil || n >= want {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("subscription ended: %v", err)
		case <-got:
		case <-time.After(30 * time.Second):
			t.Fatalf("subscriber has %d of %d events after 30s without news", n, want)
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if failure != nil {
		t.Fatal(failure)
	}
	if len(seen) != want {
		t.Fatalf("subscriber received %d events, the log holds %d", len(seen), want)
	}
}

func testNotify(t *testing.T, f Features, s eventsource.Store) {
	n := s.(eventsource.Notifier)
	ctx, cancel := context.WithCancel(ctxFor(t))
	ch, err := n.Notify(ctx)
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	for i := 0; i < 3; i++ {
		mustAppend(t, s, "notify-1", eventsource.Any, recs(1, "N")...)
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no signal 10s after append %d", i)
		}
	}
	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("Notify channel not closed after its context ended")
		}
	}
}

func testHead(t *testing.T, f Features, s eventsource.Store) {
	h := s.(eventsource.HeadReader)
	if p, err := h.Head(ctxFor(t)); err != nil || p != 0 {
		t.Fatalf("Head of an empty store = %d, %v", p, err)
	}
	res := mustAppend(t, s, "head-1", eventsource.NoStream, recs(3, "H")...)
	if p, err := h.Head(ctxFor(t)); err != nil || p != res.LastPosition {
		t.Fatalf("Head = %d, %v; want %d", p, err, res.LastPosition)
	}
}

func testListStreams(t *testing.T, f Features, s eventsource.Store) {
	l := s.(eventsource.StreamLister)
	mustAppend(t, s, "list-b", eventsource.NoStream, recs(2, "L")...)
	mustAppend(t, s, "list-a", eventsource.NoStream, recs(1, "L")...)
	mustAppend(t, s, "other", eventsource.NoStream, recs(1, "L")...)
	var got []eventsource.StreamInfo
	for info, err := range l.ListStreams(ctxFor(t), "list-") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, info)
	}
	want := []eventsource.StreamInfo{{StreamID: "list-a", Version: 1}, {StreamID: "list-b", Version: 2}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ListStreams(list-) = %v, want %v", got, want)
	}
	n := 0
	for _, err := range l.ListStreams(ctxFor(t), "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("ListStreams(\"\") listed %d streams, want 3", n)
	}
}

func testDeleteStream(t *testing.T, f Features, s eventsource.Store) {
	d := s.(eventsource.StreamDeleter)
	ctx := ctxFor(t)
	mustAppend(t, s, "del-1", eventsource.NoStream, recs(3, "D")...)
	kept := mustAppend(t, s, "del-2", eventsource.NoStream, recs(1, "D")...)
	var ce *eventsource.ConcurrencyError
	if err := d.DeleteStream(ctx, "del-1", eventsource.Exact(2)); !errors.As(err, &ce) || ce.Actual != 3 {
		t.Fatalf("DeleteStream at a stale version: %v", err)
	}
	if err := d.DeleteStream(ctx, "del-1", eventsource.Exact(3)); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	if err := d.DeleteStream(ctx, "del-1", eventsource.Any); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("DeleteStream of a deleted stream: %v, want ErrNotFound", err)
	}
	if got := readStream(t, s, "del-1", 1, 0); len(got) != 0 {
		t.Fatalf("deleted stream still reads %d records", len(got))
	}
	all := readAll(t, s, 0, eventsource.Filter{})
	if len(all) != 1 || all[0].StreamID != "del-2" {
		t.Fatalf("global log after delete holds %d records", len(all))
	}
	res := mustAppend(t, s, "del-1", eventsource.NoStream, recs(1, "D")...)
	if res.LastVersion != 1 || res.FirstPosition <= kept.LastPosition {
		t.Fatalf("append after delete: %+v (positions must not be reused)", res)
	}
	// Deleting the newest records of the log: reads still end, without them.
	tail := mustAppend(t, s, "del-3", eventsource.NoStream, recs(2, "D")...)
	if err := d.DeleteStream(ctx, "del-3", eventsource.Exact(2)); err != nil {
		t.Fatalf("DeleteStream of the log's tail: %v", err)
	}
	all = readAll(t, s, 0, eventsource.Filter{})
	if len(all) != 2 || all[len(all)-1].Position >= tail.FirstPosition {
		t.Fatalf("global log after deleting its tail holds %d records", len(all))
	}
	if after := readAll(t, s, tail.FirstPosition, eventsource.Filter{}); len(after) != 0 {
		t.Fatalf("reading from the deleted tail yielded %d records", len(after))
	}
	next := mustAppend(t, s, "del-4", eventsource.NoStream, recs(1, "D")...)
	if next.FirstPosition <= tail.LastPosition {
		t.Fatalf("append after deleting the tail reused position %d", next.FirstPosition)
	}
	// Deleting a stream while others append to it: whatever survives is a
	// stream of its own, versions 1..n.
	for round := 0; round < 10; round++ {
		stream := fmt.Sprintf("del-race-%d", round)
		mustAppend(t, s, stream, eventsource.NoStream, recs(1, "D")...)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var appended atomic.Int64
		errs := make(chan error, 4)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := s.Append(ctx, stream, eventsource.Any, recs(1, "D")); err != nil {
						errs <- err
						return
					}
					appended.Add(1)
				}
			}()
		}
		for appended.Load() < 8 && len(errs) == 0 {
			time.Sleep(100 * time.Microsecond)
		}
		err := d.DeleteStream(ctx, stream, eventsource.Any)
		close(stop)
		wg.Wait()
		close(errs)
		if err != nil {
			t.Fatalf("DeleteStream during appends: %v", err)
		}
		for err := range errs {
			t.Fatalf("Append(Any) during DeleteStream: %v", err)
		}
		for i, r := range readStream(t, s, stream, 1, 0) {
			if r.Version != int64(i+1) {
				t.Fatalf("round %d: after a delete during appends, record %d of the stream has version %d", round, i, r.Version)
			}
		}
	}
}

func testReservations(t *testing.T, f Features, s eventsource.Store) {
	r := s.(eventsource.Reserver)
	ctx := ctxFor(t)
	if _, err := r.Owner(ctx, "email", "ann@example.com"); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("Owner of a free value: %v, want ErrNotFound", err)
	}
	if err := r.Reserve(ctx, "email", "ann@example.com", "user-1"); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := r.Reserve(ctx, "email", "ann@example.com", "user-1"); err != nil {
		t.Fatalf("Reserve again by the owner: %v", err)
	}
	err := r.Reserve(ctx, "email", "ann@example.com", "user-2")
	var re *eventsource.ReservedError
	if !errors.As(err, &re) || !errors.Is(err, eventsource.ErrReserved) || re.Owner != "user-1" || re.Value != "ann@example.com" || re.Scope != "email" {
		t.Fatalf("Reserve by another owner: %v, want a *ReservedError naming user-1", err)
	}
	// Scopes are separate, and values are compared byte for byte.
	for _, v := range []struct{ scope, value string }{{"username", "ann@example.com"}, {"email", "Ann@example.com"}, {"email", "ann@example.com "}} {
		if err := r.Reserve(ctx, v.scope, v.value, "user-3"); err != nil {
			t.Fatalf("Reserve(%q, %q): %v", v.scope, v.value, err)
		}
	}
	if owner, err := r.Owner(ctx, "email", "ann@example.com"); err != nil || owner != "user-1" {
		t.Fatalf("Owner = %q, %v", owner, err)
	}
	if err := r.Release(ctx, "email", "ann@example.com", "user-2"); !errors.Is(err, eventsource.ErrReserved) {
		t.Fatalf("Release by a non-owner: %v, want ErrReserved", err)
	}
	if err := r.Release(ctx, "email", "ann@example.com", "user-1"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := r.Release(ctx, "email", "ann@example.com", "user-1"); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("Release of a free value: %v, want ErrNotFound", err)
	}
	// Many owners race for one value: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := r.Reserve(ctx, "email", "race@example.com", fmt.Sprint("user-", i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, eventsource.ErrReserved):
				t.Errorf("racing Reserve: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d owners reserved one value", wins)
	}
	for _, bad := range []struct{ scope, value, owner string }{{"", "v", "o"}, {"s", "", "o"}, {"s", "v", ""}, {"s", "bad\xff", "o"}, {"s", strings.Repeat("v", 256), "o"}} {
		if err := r.Reserve(ctx, bad.scope, bad.value, bad.owner); !errors.Is(err, eventsource.ErrInvalidReservation) || errors.Is(err, eventsource.ErrInvalidEvent) {
			t.Fatalf("Reserve(%q, %q, %q): %v, want ErrInvalidReservation", bad.scope, bad.value, bad.owner, err)
		}
	}
}

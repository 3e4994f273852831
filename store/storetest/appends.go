package storetest

// Appends: what a store keeps, the expected-version check under concurrency, atomic appends, cancellation and bad input.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

func testRoundTrip(t *testing.T, f Features, s eventsource.Store) {
	binary := make([]byte, 4096)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	in := []eventsource.Record{
		{Type: "Binary", Codec: "gob", Data: binary, Metadata: map[string]string{"user": "ünïcode ✓", "empty": "", "quote": `'"\`}},
		{Type: "Empty", Codec: "enc+json;v=12", EventID: "my-own-id-1"}, // a codec name with a schema version parameter
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
	if f.SlowType != "" {
		testCancelledSlowCommits(t, f, s)
	}
}

// testCancelledSlowCommits cancels appends while the database holds their
// commits. The database may have committed one by the time the
// cancellation reaches it (the caller then gets the context's error for an
// append that landed: outcome unknown, which a retry with the same event
// IDs resolves), so each append must be all or nothing, and a retry must
// get the original result or store it once.
func testCancelledSlowCommits(t *testing.T, f Features, s eventsource.Store) {
	for i := 0; i < 5; i++ {
		batch := recs(3, f.SlowType)
		for j := range batch {
			batch[j].EventID = fmt.Sprintf("slow-%d-%d", i, j)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
		_, err := s.Append(ctx, "cancel-slow", eventsource.Any, batch)
		cancel()
		if err == nil {
			continue // the commit won the race with the deadline
		}
		got := readStream(t, s, "cancel-slow", 1, 0)
		if len(got)%3 != 0 {
			t.Fatalf("a cancelled append left part of itself: the stream holds %d records", len(got))
		}
		res := mustAppend(t, s, "cancel-slow", eventsource.Any, batch...) // the retry
		if res.LastVersion-res.FirstVersion != 2 {
			t.Fatalf("retry of a cancelled append: %+v", res)
		}
	}
	got := readStream(t, s, "cancel-slow", 1, 0)
	if len(got) != 15 {
		t.Fatalf("five appends of 3, each cancelled and retried: %d records, want 15", len(got))
	}
	for i, r := range got {
		if want := fmt.Sprintf("slow-%d-%d", i/3, i%3); r.EventID != want {
			t.Fatalf("record %d is %s, want %s", i, r.EventID, want)
		}
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

package storetest

// Stream lifecycle (eventsource.StreamLifecycle and Scavenger): metadata
// with its own expected version, truncation, max count, max age, soft and
// hard deletes, and a scavenge that changes nothing a reader sees. After
// each step the stream's reads and the global log agree (visible).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
)

func testLifecycle(t *testing.T, f Features, s eventsource.Store) {
	l, _ := eventsource.As[eventsource.StreamLifecycle](s)
	t.Run("Metadata", func(t *testing.T) { testStreamMetadata(t, s, l) })
	t.Run("Truncate", func(t *testing.T) { testTruncate(t, s, l) })
	t.Run("MaxCount", func(t *testing.T) { testMaxCount(t, s, l) })
	t.Run("MaxAge", func(t *testing.T) { testMaxAge(t, s, l) })
	t.Run("SoftDelete", func(t *testing.T) { testSoftDelete(t, s, l) })
	t.Run("Tombstone", func(t *testing.T) { testTombstone(t, s, l) })
	t.Run("TombstoneDuringAppends", func(t *testing.T) { testTombstoneRace(t, s, l) })
}

// visible checks that stream reads exactly versions want, through
// ReadStream, through the global log and, when the store lists streams,
// in ListStreams with version head (or not at all when listed is false).
func visible(t *testing.T, s eventsource.Store, stream string, head int64, listed bool, want ...int64) {
	t.Helper()
	got := versions(readStream(t, s, stream, 1, 0))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ReadStream(%q) reads versions %v, want %v", stream, got, want)
	}
	if log := versions(readAll(t, s, 0, eventsource.Filter{Streams: []string{stream}})); fmt.Sprint(log) != fmt.Sprint(want) {
		t.Fatalf("the global log holds versions %v of %q, its stream reads %v", log, stream, want)
	}
	var own []eventsource.Record
	for _, r := range readAll(t, s, 0, eventsource.Filter{StreamPrefixes: []string{stream}, Types: []string{"LC"}}) {
		if r.StreamID == stream {
			own = append(own, r)
		}
	}
	if fil := versions(own); fmt.Sprint(fil) != fmt.Sprint(want) {
		t.Fatalf("the filtered global log holds versions %v of %q, want %v", fil, stream, want)
	}
	lister, ok := eventsource.As[eventsource.StreamLister](s)
	if !ok {
		return
	}
	var found *eventsource.StreamInfo
	for info, err := range lister.ListStreams(ctxFor(t), stream) {
		if err != nil {
			t.Fatal(err)
		}
		if info.StreamID == stream {
			found = &info
		}
	}
	switch {
	case listed && (found == nil || found.Version != head):
		t.Fatalf("ListStreams lists %q as %+v, want version %d", stream, found, head)
	case !listed && found != nil:
		t.Fatalf("ListStreams lists %q (%+v), deleted", stream, *found)
	}
}

func versions(rs []eventsource.Record) []int64 {
	out := []int64{}
	for _, r := range rs {
		out = append(out, r.Version)
	}
	return out
}

func setMeta(t *testing.T, l eventsource.StreamLifecycle, stream string, expected eventsource.ExpectedVersion, md eventsource.StreamMetadata) int64 {
	t.Helper()
	v, err := l.SetStreamMetadata(ctxFor(t), stream, expected, md)
	if err != nil {
		t.Fatalf("SetStreamMetadata(%q, %s, %+v): %v", stream, expected, md, err)
	}
	return v
}

func testStreamMetadata(t *testing.T, s eventsource.Store, l eventsource.StreamLifecycle) {
	ctx := ctxFor(t)
	if md, v, err := l.StreamMetadata(ctx, "meta-1"); err != nil || v != 0 || !md.IsZero() {
		t.Fatalf("StreamMetadata of a stream never written = %+v, %d, %v; want zero, 0", md, v, err)
	}
	// A stream needs no events to have metadata.
	md := eventsource.StreamMetadata{Values: map[string]string{"owner": "billing", "note": "ünïcode, \"quoted\""}}
	if v := setMeta(t, l, "meta-1", eventsource.NoStream, md); v != 1 {
		t.Fatalf("first metadata version %d, want 1", v)
	}
	var ce *eventsource.ConcurrencyError
	if _, err := l.SetStreamMetadata(ctx, "meta-1", eventsource.NoStream, md); !errors.As(err, &ce) || !ce.Metadata || ce.Actual != 1 || ce.Stream != "meta-1" {
		t.Fatalf("SetStreamMetadata(NoStream) over version 1: %v, want a metadata *ConcurrencyError at 1", err)
	}
	if _, err := l.SetStreamMetadata(ctx, "meta-1", eventsource.Exact(7), md); !errors.As(err, &ce) || ce.Actual != 1 {
		t.Fatalf("SetStreamMetadata(Exact(7)) over version 1: %v", err)
	}
	md2 := eventsource.StreamMetadata{MaxAge: time.Hour, Values: map[string]string{"owner": "ops"}}
	if v := setMeta(t, l, "meta-1", eventsource.Exact(1), md2); v != 2 {
		t.Fatalf("second metadata version %d, want 2", v)
	}
	if v := setMeta(t, l, "meta-1", eventsource.Any, md2); v != 3 {
		t.Fatalf("metadata version after Any %d, want 3", v)
	}
	got, v, err := l.StreamMetadata(ctx, "meta-1")
	if err != nil || v != 3 || got.MaxAge != time.Hour || got.TruncateBefore != 0 || got.MaxCount != 0 || fmt.Sprint(got.Values) != fmt.Sprint(md2.Values) {
		t.Fatalf("StreamMetadata = %+v, %d, %v; want %+v at 3", got, v, err, md2)
	}
	if _, _, err := l.StreamMetadata(ctx, "meta-2"); err != nil {
		t.Fatalf("other streams have no metadata: %v", err)
	}
	// Metadata is not an event: the stream and the log stay empty.
	visible(t, s, "meta-1", 0, false)
	for _, bad := range []eventsource.StreamMetadata{
		{TruncateBefore: -1}, {MaxCount: -1}, {MaxAge: -time.Second},
		{Values: map[string]string{"": "empty key"}},
		{Values: map[string]string{"k": "bad\xff"}},
		{Values: map[string]string{"k": "nul\x00"}},
		{Values: map[string]string{"k": strings.Repeat("v", 20<<10)}},
	} {
		if _, err := l.SetStreamMetadata(ctx, "meta-1", eventsource.Any, bad); !errors.Is(err, eventsource.ErrInvalidStreamMetadata) {
			t.Fatalf("SetStreamMetadata(%+.40v): %v, want ErrInvalidStreamMetadata", bad, err)
		}
	}
	if _, err := l.SetStreamMetadata(ctx, "", eventsource.Any, md); !errors.Is(err, eventsource.ErrInvalidStreamID) {
		t.Fatalf("SetStreamMetadata of an empty stream ID: %v", err)
	}
	// An expected version that is none (below StreamExists) is bad input,
	// for every lifecycle write, before anything is written.
	bad := eventsource.ExpectedVersion(-9)
	if _, err := l.SetStreamMetadata(ctx, "meta-1", bad, md); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Fatalf("SetStreamMetadata(expected -9): %v, want ErrInvalidEvent", err)
	}
	if err := l.DeleteStream(ctx, "meta-1", bad); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Fatalf("DeleteStream(expected -9): %v, want ErrInvalidEvent", err)
	}
	if err := l.TombstoneStream(ctx, "meta-1", bad); !errors.Is(err, eventsource.ErrInvalidEvent) {
		t.Fatalf("TombstoneStream(expected -9): %v, want ErrInvalidEvent", err)
	}
	if _, v, _ := l.StreamMetadata(ctx, "meta-1"); v != 3 {
		t.Fatalf("refused metadata writes moved the metadata version to %d", v)
	}
}

func testTruncate(t *testing.T, s eventsource.Store, l eventsource.StreamLifecycle) {
	ctx := ctxFor(t)
	mustAppend(t, s, "trunc-1", eventsource.NoStream, recs(5, "LC")...)
	other := mustAppend(t, s, "trunc-10", eventsource.NoStream, recs(2, "LC")...)
	setMeta(t, l, "trunc-1", eventsource.NoStream, eventsource.StreamMetadata{TruncateBefore: 3})
	visible(t, s, "trunc-1", 5, true, 3, 4, 5)
	visible(t, s, "trunc-10", 2, true, 1, 2) // a stream whose ID starts with the other's is untouched
	if got := readStream(t, s, "trunc-1", 1, 2); len(got) != 0 {
		t.Fatalf("ReadStream(1, 2) of a stream truncated before 3 read %d records", len(got))
	}
	if got := versions(readStream(t, s, "trunc-1", 4, 0)); fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("ReadStream(4, 0) = %v", got)
	}
	// The stream keeps its versions: appends continue at 6, and NoStream
	// still conflicts (the stream is not deleted).
	var ce *eventsource.ConcurrencyError
	if _, err := s.Append(ctx, "trunc-1", eventsource.NoStream, recs(1, "LC")); !errors.As(err, &ce) || ce.Actual != 5 || ce.Expected != eventsource.NoStream {
		t.Fatalf("Append(NoStream) to a truncated stream: %v, want a *ConcurrencyError at 5", err)
	}
	if res := mustAppend(t, s, "trunc-1", eventsource.Exact(5), recs(1, "LC")...); res.FirstVersion != 6 || res.FirstPosition <= other.LastPosition {
		t.Fatalf("append after truncation: %+v", res)
	}
	visible(t, s, "trunc-1", 6, true, 3, 4, 5, 6)
	// Truncating past the end deletes the stream; truncating less later
	// brings nothing back.
	setMeta(t, l, "trunc-1", eventsource.Exact(1), eventsource.StreamMetadata{TruncateBefore: 5})
	visible(t, s, "trunc-1", 6, true, 5, 6)
	setMeta(t, l, "trunc-1", eventsource.Exact(2), eventsource.StreamMetadata{})
	visible(t, s, "trunc-1", 6, true, 5, 6)
	if md, _, _ := l.StreamMetadata(ctx, "trunc-1"); md.TruncateBefore != 0 {
		t.Fatalf("metadata reads back %+v, as written", md)
	}
	setMeta(t, l, "trunc-1", eventsource.Any, eventsource.StreamMetadata{TruncateBefore: 100})
	visible(t, s, "trunc-1", 6, false)
	// Truncation set before the stream has events applies to them.
	setMeta(t, l, "trunc-2", eventsource.NoStream, eventsource.StreamMetadata{TruncateBefore: 3})
	mustAppend(t, s, "trunc-2", eventsource.NoStream, recs(4, "LC")...)
	visible(t, s, "trunc-2", 4, true, 3, 4)
}

func testMaxCount(t *testing.T, s eventsource.Store, l eventsource.StreamLifecycle) {
	ctx := ctxFor(t)
	mustAppend(t, s, "count-1", eventsource.NoStream, recs(5, "LC")...)
	setMeta(t, l, "count-1", eventsource.NoStream, eventsource.StreamMetadata{MaxCount: 2})
	visible(t, s, "count-1", 5, true, 4, 5)
	mustAppend(t, s, "count-1", eventsource.Exact(5), recs(2, "LC")...)
	visible(t, s, "count-1", 7, true, 6, 7)
	// Raising the limit brings nothing back; the window grows with appends.
	setMeta(t, l, "count-1", eventsource.Exact(1), eventsource.StreamMetadata{MaxCount: 10})
	visible(t, s, "count-1", 7, true, 6, 7)
	mustAppend(t, s, "count-1", eventsource.Any, recs(1, "LC")...)
	visible(t, s, "count-1", 8, true, 6, 7, 8)
	// Concurrent appends to a stream with a count: the newest N, always.
	setMeta(t, l, "count-2", eventsource.NoStream, eventsource.StreamMetadata{MaxCount: 3})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if _, err := s.Append(ctx, "count-2", eventsource.Any, recs(1, "LC")); err != nil {
					t.Errorf("Append(Any): %v", err)
					return
				}
				if got := readStream(t, s, "count-2", 1, 0); len(got) == 0 || len(got) > 3 {
					t.Errorf("a stream with MaxCount 3 reads %d records", len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
	visible(t, s, "count-2", 40, true, 38, 39, 40)
}

func testMaxAge(t *testing.T, s eventsource.Store, l eventsource.StreamLifecycle) {
	// Records 4.5 s old and one just appended, under a 3 s limit: the checks
	// have 3 s (of a loaded machine) before the new one ages out too.
	old := mustAppend(t, s, "age-1", eventsource.NoStream, recs(2, "LC")...)
	oldAt := readStream(t, s, "age-1", 1, 1)[0].RecordedAt
	for time.Since(oldAt) < 4500*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
	}
	mustAppend(t, s, "age-1", eventsource.Exact(old.LastVersion), recs(1, "LC")...)
	setMeta(t, l, "age-1", eventsource.NoStream, eventsource.StreamMetadata{MaxAge: 3 * time.Second})
	visible(t, s, "age-1", 3, true, 3)
	// Lifting the limit brings nothing back.
	setMeta(t, l, "age-1", eventsource.Exact(1), eventsource.StreamMetadata{})
	visible(t, s, "age-1", 3, true, 3)
	setMeta(t, l, "age-1", eventsource.Exact(2), eventsource.StreamMetadata{MaxAge: time.Hour})
	visible(t, s, "age-1", 3, true, 3)
}

func testSoftDelete(t *testing.T, s eventsource.Store, l eventsource.StreamLifecycle) {
	ctx := ctxFor(t)
	first := mustAppend(t, s, "soft-1", eventsource.NoStream, recs(3, "LC")...)
	setMeta(t, l, "soft-1", eventsource.NoStream, eventsource.StreamMetadata{Values: map[string]string{"owner": "me"}})
	var ce *eventsource.ConcurrencyError
	if err := l.DeleteStream(ctx, "soft-1", eventsource.Exact(2)); !errors.As(err, &ce) || ce.Actual != 3 || ce.Metadata {
		t.Fatalf("DeleteStream at a stale version: %v, want a *ConcurrencyError at 3", err)
	}
	if err := l.DeleteStream(ctx, "soft-1", eventsource.Exact(3)); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	visible(t, s, "soft-1", 3, false)
	md, mv, err := l.StreamMetadata(ctx, "soft-1")
	if err != nil || md.TruncateBefore != 4 || mv != 2 || md.Values["owner"] != "me" {
		t.Fatalf("metadata after a soft delete = %+v at %d, %v; want TruncateBefore 4 at 2, values kept", md, mv, err)
	}
	if err := l.DeleteStream(ctx, "soft-1", eventsource.Any); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("DeleteStream of a deleted stream: %v, want ErrNotFound", err)
	}
	if err := l.DeleteStream(ctx, "soft-never", eventsource.Any); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("DeleteStream of a stream never written: %v, want ErrNotFound", err)
	}
	// Written again, it continues its versions; NoStream accepts it, and
	// a retry of that append returns its result.
	next := recs(2, "LC")
	next[0].EventID, next[1].EventID = "soft-1-again-a", "soft-1-again-b"
	res, err := s.Append(ctx, "soft-1", eventsource.NoStream, next)
	if err != nil || res.FirstVersion != 4 || res.LastVersion != 5 || res.FirstPosition <= first.LastPosition {
		t.Fatalf("Append(NoStream) to a soft-deleted stream = %+v, %v; want versions 4-5", res, err)
	}
	if retry, err := s.Append(ctx, "soft-1", eventsource.NoStream, next); err != nil || retry != res {
		t.Fatalf("retried Append(NoStream) = %+v, %v; want %+v", retry, err, res)
	}
	visible(t, s, "soft-1", 5, true, 4, 5)
	// Deleted again, it takes Exact(its version) as well as NoStream.
	if err := l.DeleteStream(ctx, "soft-1", eventsource.StreamExists); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "soft-1", eventsource.Exact(4), recs(1, "LC")); !errors.As(err, &ce) || ce.Actual != 5 {
		t.Fatalf("Append(Exact(4)) to a soft-deleted stream at 5: %v", err)
	}
	mustAppend(t, s, "soft-1", eventsource.Exact(5), recs(1, "LC")...)
	visible(t, s, "soft-1", 6, true, 6)
}

func testTombstone(t *testing.T, s eventsource.Store, l eventsource.StreamLifecycle) {
	ctx := ctxFor(t)
	mustAppend(t, s, "tomb-1", eventsource.NoStream, recs(2, "LC")...)
	var ce *eventsource.ConcurrencyError
	if err := l.TombstoneStream(ctx, "tomb-1", eventsource.Exact(1)); !errors.As(err, &ce) || ce.Actual != 2 {
		t.Fatalf("TombstoneStream at a stale version: %v, want a *ConcurrencyError at 2", err)
	}
	if err := l.TombstoneStream(ctx, "tomb-1", eventsource.Exact(2)); err != nil {
		t.Fatalf("TombstoneStream: %v", err)
	}
	before := len(readAll(t, s, 0, eventsource.Filter{}))
	deleted := func(what string, err error) {
		t.Helper()
		var de *eventsource.StreamDeletedError
		if !errors.As(err, &de) || !errors.Is(err, eventsource.ErrStreamDeleted) || de.Stream != "tomb-1" {
			t.Fatalf("%s of a tombstoned stream: %v, want a *StreamDeletedError", what, err)
		}
	}
	for _, ev := range []eventsource.ExpectedVersion{eventsource.Any, eventsource.NoStream, eventsource.Exact(2), eventsource.StreamExists} {
		_, err := s.Append(ctx, "tomb-1", ev, recs(1, "LC"))
		deleted("Append("+ev.String()+")", err)
	}
	_, err := l.SetStreamMetadata(ctx, "tomb-1", eventsource.Any, eventsource.StreamMetadata{})
	deleted("SetStreamMetadata", err)
	_, _, err = l.StreamMetadata(ctx, "tomb-1")
	deleted("StreamMetadata", err)
	deleted("DeleteStream", l.DeleteStream(ctx, "tomb-1", eventsource.Any))
	deleted("TombstoneStream", l.TombstoneStream(ctx, "tomb-1", eventsource.Any))
	for _, err := range s.ReadStream(ctx, "tomb-1", 1, 0) {
		deleted("ReadStream", err)
		break
	}
	if n := len(readAll(t, s, 0, eventsource.Filter{})); n != before {
		t.Fatalf("refused appends changed the global log from %d to %d records", before, n)
	}
	if got := readAll(t, s, 0, eventsource.Filter{Streams: []string{"tomb-1"}}); len(got) != 0 {
		t.Fatalf("the global log still holds %d records of a tombstoned stream", len(got))
	}
	if lister, ok := eventsource.As[eventsource.StreamLister](s); ok {
		for info, err := range lister.ListStreams(ctx, "tomb-") {
			if err != nil || info.StreamID == "tomb-1" {
				t.Fatalf("ListStreams lists %+v, %v", info, err)
			}
		}
	}
	// A name with no events can be tombstoned too, and a soft-deleted
	// stream with NoStream.
	if err := l.TombstoneStream(ctx, "tomb-2", eventsource.NoStream); err != nil {
		t.Fatalf("TombstoneStream(NoStream) of a new name: %v", err)
	}
	if _, err := s.Append(ctx, "tomb-2", eventsource.NoStream, recs(1, "LC")); !errors.Is(err, eventsource.ErrStreamDeleted) {
		t.Fatalf("Append to a tombstoned new name: %v", err)
	}
	mustAppend(t, s, "tomb-3", eventsource.NoStream, recs(1, "LC")...)
	if err := l.DeleteStream(ctx, "tomb-3", eventsource.Any); err != nil {
		t.Fatal(err)
	}
	if err := l.TombstoneStream(ctx, "tomb-3", eventsource.NoStream); err != nil {
		t.Fatalf("TombstoneStream(NoStream) of a soft-deleted stream: %v", err)
	}
	if _, err := s.Append(ctx, "tomb-3", eventsource.Any, recs(1, "LC")); !errors.Is(err, eventsource.ErrStreamDeleted) {
		t.Fatalf("Append to a tombstoned stream: %v", err)
	}
}

// testTombstoneRace: a tombstone lands between appends, never inside one:
// every append that succeeded kept the stream contiguous, and once the
// tombstone returns, every append fails with ErrStreamDeleted.
func testTombstoneRace(t *testing.T, s eventsource.Store, l eventsource.StreamLifecycle) {
	ctx := ctxFor(t)
	for round := 0; round < 5; round++ {
		stream := fmt.Sprintf("tomb-race-%d", round)
		mustAppend(t, s, stream, eventsource.NoStream, recs(1, "LC")...)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var last []int64 // LastVersion of each successful append
		done := make(chan struct{})
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					after := false
					select {
					case <-done:
						after = true
					default:
					}
					res, err := s.Append(ctx, stream, eventsource.Any, recs(2, "LC"))
					switch {
					case errors.Is(err, eventsource.ErrStreamDeleted):
						return
					case err != nil:
						t.Errorf("Append(Any) during TombstoneStream: %v", err)
						return
					case after:
						t.Errorf("Append(Any) begun after TombstoneStream returned succeeded: %+v", res)
						return
					}
					mu.Lock()
					last = append(last, res.LastVersion)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(round+1) * 2 * time.Millisecond)
		err := l.TombstoneStream(ctx, stream, eventsource.Any)
		close(done)
		wg.Wait()
		if err != nil {
			t.Fatalf("TombstoneStream during appends: %v", err)
		}
		seen := map[int64]bool{}
		for _, v := range last {
			if v%2 != 1 || seen[v] {
				t.Fatalf("round %d: appends of two records ended at versions %v", round, last)
			}
			seen[v] = true
		}
	}
}

// testScavenge: a scavenge removes what the rules retired and nothing a
// reader sees; it is resumable, and versions survive it. (A store that
// removes only whole appends, with retired and visible records in one
// append keeping both and hiding the retired, says so in its docs.)
func testScavenge(t *testing.T, f Features, s eventsource.Store) {
	sc, _ := eventsource.As[eventsource.Scavenger](s)
	l, ok := eventsource.As[eventsource.StreamLifecycle](s)
	if !ok {
		t.Fatalf("%T implements Scavenger but not StreamLifecycle", s)
	}
	ctx := ctxFor(t)
	// One record per append: a store may only remove whole appends (NATS
	// keeps an append as one message), and these counts hold for all.
	for stream, n := range map[string]int{"scav-a": 5, "scav-b": 3, "scav-c": 4, "scav-d": 2, "scav-e": 2} {
		for i := 0; i < n; i++ {
			mustAppend(t, s, stream, eventsource.Exact(int64(i)), recs(1, "LC")...)
		}
	}
	setMeta(t, l, "scav-a", eventsource.NoStream, eventsource.StreamMetadata{TruncateBefore: 4}) // retires 3
	if err := l.DeleteStream(ctx, "scav-b", eventsource.Exact(3)); err != nil {                  // retires 3
		t.Fatal(err)
	}
	setMeta(t, l, "scav-c", eventsource.NoStream, eventsource.StreamMetadata{MaxCount: 1}) // retires 3
	if err := l.TombstoneStream(ctx, "scav-d", eventsource.Any); err != nil {              // retires 2
		t.Fatal(err)
	}
	beforeLog := readAll(t, s, 0, eventsource.Filter{})
	var head uint64
	if h, ok := eventsource.As[eventsource.HeadReader](s); ok {
		head, _ = h.Head(ctx)
	}
	// Cancelled after its first stream, it reports where it got to.
	cctx, cancel := context.WithCancel(ctx)
	res, err := sc.Scavenge(cctx, eventsource.ScavengeOptions{Progress: func(eventsource.ScavengeResult) { cancel() }})
	if !errors.Is(err, context.Canceled) || res.Streams != 1 || res.Last != "scav-a" || res.Removed != 3 {
		t.Fatalf("cancelled Scavenge = %+v, %v; want scav-a done, 3 removed, context.Canceled", res, err)
	}
	var progress []string
	rest, err := sc.Scavenge(ctx, eventsource.ScavengeOptions{After: res.Last, Progress: func(r eventsource.ScavengeResult) { progress = append(progress, r.Last) }})
	if err != nil || rest.Removed != 8 || rest.Last != "scav-d" || fmt.Sprint(progress) != "[scav-b scav-c scav-d]" {
		t.Fatalf("resumed Scavenge = %+v (progress %v), %v; want 8 removed from scav-b, scav-c, scav-d", rest, progress, err)
	}
	if again, err := sc.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil || again.Removed != 0 {
		t.Fatalf("a second Scavenge = %+v, %v; want nothing removed", again, err)
	}
	afterLog := readAll(t, s, 0, eventsource.Filter{})
	if fmt.Sprint(versionsAndPositions(beforeLog)) != fmt.Sprint(versionsAndPositions(afterLog)) {
		t.Fatalf("Scavenge changed the global log from %v to %v", versionsAndPositions(beforeLog), versionsAndPositions(afterLog))
	}
	if h, ok := eventsource.As[eventsource.HeadReader](s); ok {
		if after, err := h.Head(ctx); err != nil || after != head {
			t.Fatalf("Head after Scavenge = %d, %v; was %d (it never goes back)", after, err, head)
		}
	}
	visible(t, s, "scav-a", 5, true, 4, 5)
	visible(t, s, "scav-b", 3, false)
	visible(t, s, "scav-c", 4, true, 4)
	visible(t, s, "scav-e", 2, true, 1, 2)
	// Versions survive the scavenge: the deleted stream continues at 4, the
	// truncated one at 6, and the tombstone stays.
	if res := mustAppend(t, s, "scav-b", eventsource.NoStream, recs(1, "LC")...); res.FirstVersion != 4 {
		t.Fatalf("append to a scavenged soft-deleted stream: %+v, want version 4", res)
	}
	if res := mustAppend(t, s, "scav-a", eventsource.Exact(5), recs(1, "LC")...); res.FirstVersion != 6 {
		t.Fatalf("append to a scavenged truncated stream: %+v, want version 6", res)
	}
	if _, err := s.Append(ctx, "scav-d", eventsource.Any, recs(1, "LC")); !errors.Is(err, eventsource.ErrStreamDeleted) {
		t.Fatalf("append to a scavenged tombstoned stream: %v, want ErrStreamDeleted", err)
	}
	visible(t, s, "scav-b", 4, true, 4)
	visible(t, s, "scav-a", 6, true, 4, 5, 6)
	// A cut past the end, scavenged: appends that follow land below it,
	// and stay hidden in the stream and in the log.
	setMeta(t, l, "scav-a", eventsource.Exact(1), eventsource.StreamMetadata{TruncateBefore: 100})
	if _, err := sc.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "scav-a", eventsource.Exact(6), recs(1, "LC")...)
	visible(t, s, "scav-a", 7, false)
	visible(t, s, "scav-b", 4, true, 4)
}

func versionsAndPositions(rs []eventsource.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s@%d:%d", r.StreamID, r.Version, r.Position)
	}
	return out
}

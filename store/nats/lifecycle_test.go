package nats_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	esnats "github.com/eventsource-go/eventsource/store/nats"
)

// twins returns two stores on the same JetStream streams, each with its
// own connection, as two processes would have.
func twins(t *testing.T, tg target) (*esnats.Store, *esnats.Store) {
	t.Helper()
	name, prefix := randomName("ESL_"), randomName("esl")
	opts := []esnats.Option{esnats.WithStreamName(name), esnats.WithSubjectPrefix(prefix)}
	a := esnats.New(tg.js, opts...)
	b := esnats.New(connect(t, tg.url).js, opts...)
	t.Cleanup(func() {
		a.Close()
		b.Close()
		dropStreams(t, tg, name)
	})
	if err := a.Setup(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func appendN(t *testing.T, s eventsource.Store, stream string, n int) eventsource.AppendResult {
	t.Helper()
	var res eventsource.AppendResult
	for i := 0; i < n; i++ {
		var err error
		if res, err = s.Append(ctxFor(t), stream, eventsource.Any, []eventsource.Record{rec("E", fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// seen returns the versions of stream's records, by its stream read and by
// the global log.
func seen(t *testing.T, s eventsource.Store, stream string) (byStream, byLog []int64) {
	t.Helper()
	byStream, byLog = []int64{}, []int64{}
	for r, err := range s.ReadStream(ctxFor(t), stream, 1, 0) {
		var de *eventsource.StreamDeletedError
		if errors.As(err, &de) {
			break // a hard-deleted stream reads as nothing here
		}
		if err != nil {
			t.Fatal(err)
		}
		byStream = append(byStream, r.Version)
	}
	for r, err := range s.ReadAll(ctxFor(t), 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if r.StreamID == stream {
			byLog = append(byLog, r.Version)
		}
	}
	return byStream, byLog
}

func wantSeen(t *testing.T, s eventsource.Store, stream string, want string) {
	t.Helper()
	byStream, byLog := seen(t, s, stream)
	if fmt.Sprint(byStream) != want || fmt.Sprint(byLog) != want {
		t.Fatalf("%q reads %v by stream and %v in the log, want %s", stream, byStream, byLog, want)
	}
}

// TestLifecycleAcrossStores: a rule written through one store is in force
// for a reader in another process (another Store, another connection) as
// soon as the write returns, in its global log as in its stream reads; so
// are a hard delete and a MaxCount window moved by the other's appends.
func TestLifecycleAcrossStores(t *testing.T) {
	for name, tgt := range targets(t) {
		t.Run(name, func(t *testing.T) {
			a, b := twins(t, tgt(t))
			ctx := ctxFor(t)
			appendN(t, a, "x", 5)
			wantSeen(t, b, "x", "[1 2 3 4 5]") // b's book now holds the index as it was
			if _, err := a.SetStreamMetadata(ctx, "x", eventsource.NoStream, eventsource.StreamMetadata{TruncateBefore: 4}); err != nil {
				t.Fatal(err)
			}
			wantSeen(t, b, "x", "[4 5]")
			if _, err := a.SetStreamMetadata(ctx, "x", eventsource.Exact(1), eventsource.StreamMetadata{MaxCount: 2}); err != nil {
				t.Fatal(err)
			}
			appendN(t, b, "x", 2)
			wantSeen(t, a, "x", "[6 7]")
			wantSeen(t, b, "x", "[6 7]")
			if err := b.DeleteStream(ctx, "x", eventsource.Exact(7)); err != nil {
				t.Fatal(err)
			}
			wantSeen(t, a, "x", "[]")
			if res, err := a.Append(ctx, "x", eventsource.NoStream, []eventsource.Record{rec("E", "again")}); err != nil || res.FirstVersion != 8 {
				t.Fatalf("Append(NoStream) after the other's soft delete = %+v, %v; want version 8", res, err)
			}
			wantSeen(t, b, "x", "[8]")
			if err := a.TombstoneStream(ctx, "x", eventsource.Any); err != nil {
				t.Fatal(err)
			}
			wantSeen(t, b, "x", "[]")
			if _, err := b.Append(ctx, "x", eventsource.Exact(8), []eventsource.Record{rec("E", "late")}); !errors.Is(err, eventsource.ErrStreamDeleted) {
				t.Fatalf("the other's append after a hard delete: %v, want ErrStreamDeleted", err)
			}
		})
	}
}

// TestScavengeWholeCommits: the suite's scavenge scenario with one record
// per append (a commit is one message, which JetStream cannot edit), and
// what happens to a commit that holds both retired and visible records.
func TestScavengeWholeCommits(t *testing.T) {
	for name, tgt := range targets(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, tgt(t))
			ctx := ctxFor(t)
			appendN(t, s, "scav-a", 5)
			appendN(t, s, "scav-b", 3)
			appendN(t, s, "scav-c", 4)
			appendN(t, s, "scav-d", 2)
			appendN(t, s, "scav-e", 2)
			mustMeta := func(stream string, md eventsource.StreamMetadata) {
				t.Helper()
				if _, err := s.SetStreamMetadata(ctx, stream, eventsource.Any, md); err != nil {
					t.Fatal(err)
				}
			}
			mustMeta("scav-a", eventsource.StreamMetadata{TruncateBefore: 4})
			if err := s.DeleteStream(ctx, "scav-b", eventsource.Exact(3)); err != nil {
				t.Fatal(err)
			}
			mustMeta("scav-c", eventsource.StreamMetadata{MaxCount: 1})
			if err := s.TombstoneStream(ctx, "scav-d", eventsource.Any); err != nil {
				t.Fatal(err)
			}
			before := readAllRecs(t, s)
			cctx, cancel := context.WithCancel(ctx)
			res, err := s.Scavenge(cctx, eventsource.ScavengeOptions{Progress: func(eventsource.ScavengeResult) { cancel() }})
			if !errors.Is(err, context.Canceled) || res != (eventsource.ScavengeResult{Streams: 1, Removed: 3, Last: "scav-a"}) {
				t.Fatalf("cancelled Scavenge = %+v, %v", res, err)
			}
			var progress []string
			rest, err := s.Scavenge(ctx, eventsource.ScavengeOptions{After: res.Last, Progress: func(r eventsource.ScavengeResult) { progress = append(progress, r.Last) }})
			if err != nil || rest.Removed != 8 || rest.Last != "scav-d" || fmt.Sprint(progress) != "[scav-b scav-c scav-d]" {
				t.Fatalf("resumed Scavenge = %+v (progress %v), %v", rest, progress, err)
			}
			if again, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil || again.Removed != 0 {
				t.Fatalf("a second Scavenge = %+v, %v", again, err)
			}
			if after := readAllRecs(t, s); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("Scavenge changed the global log from %v to %v", before, after)
			}
			wantSeen(t, s, "scav-a", "[4 5]")
			wantSeen(t, s, "scav-b", "[]")
			wantSeen(t, s, "scav-c", "[4]")
			wantSeen(t, s, "scav-e", "[1 2]")
			// Versions survive: the deleted stream continues at 4, the
			// truncated one at 6, and the tombstone stays.
			if res, err := s.Append(ctx, "scav-b", eventsource.NoStream, []eventsource.Record{rec("E", "b")}); err != nil || res.FirstVersion != 4 {
				t.Fatalf("append to a scavenged soft-deleted stream: %+v, %v", res, err)
			}
			if res, err := s.Append(ctx, "scav-a", eventsource.Exact(5), []eventsource.Record{rec("E", "a")}); err != nil || res.FirstVersion != 6 {
				t.Fatalf("append to a scavenged truncated stream: %+v, %v", res, err)
			}
			if _, err := s.Append(ctx, "scav-d", eventsource.Any, []eventsource.Record{rec("E", "d")}); !errors.Is(err, eventsource.ErrStreamDeleted) {
				t.Fatalf("append to a scavenged tombstoned stream: %v", err)
			}
			// Everything retired, by age: the last commit stays (it holds
			// the version), hidden.
			appendN(t, s, "scav-f", 3)
			mustMeta("scav-f", eventsource.StreamMetadata{MaxAge: time.Nanosecond})
			time.Sleep(time.Millisecond)
			if res, err := s.Scavenge(ctx, eventsource.ScavengeOptions{After: "scav-e"}); err != nil || res.Removed != 3 {
				t.Fatalf("Scavenge of a stream retired by age = %+v, %v; want its 3 commits removed (a marker is its last message)", res, err)
			}
			wantSeen(t, s, "scav-f", "[]")
			if res, err := s.Append(ctx, "scav-f", eventsource.Exact(3), []eventsource.Record{rec("E", "f")}); err != nil || res.FirstVersion != 4 {
				t.Fatalf("append after an age scavenge: %+v, %v", res, err)
			}

			// One append of five records, truncated before 4: the commit
			// holds visible records, so it stays, hiding 1-3.
			if _, err := s.Append(ctx, "multi", eventsource.NoStream, recsOf(5)); err != nil {
				t.Fatal(err)
			}
			mustMeta("multi", eventsource.StreamMetadata{TruncateBefore: 4})
			if res, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil || res.Removed != 0 {
				t.Fatalf("Scavenge of a commit that holds visible records = %+v, %v; want it kept", res, err)
			}
			wantSeen(t, s, "multi", "[4 5]")
			mustMeta("multi", eventsource.StreamMetadata{TruncateBefore: 6})
			if res, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil || res.Removed != 5 {
				t.Fatalf("Scavenge once the whole commit is retired = %+v, %v; want 5 removed", res, err)
			}
			if res, err := s.Append(ctx, "multi", eventsource.Exact(5), recsOf(1)); err != nil || res.FirstVersion != 6 {
				t.Fatalf("append after the scavenge: %+v, %v", res, err)
			}
		})
	}
}

func recsOf(n int) []eventsource.Record {
	out := make([]eventsource.Record, n)
	for i := range out {
		out[i] = rec("E", fmt.Sprint(i))
	}
	return out
}

func readAllRecs(t *testing.T, s eventsource.Store) []string {
	t.Helper()
	var out []string
	for r, err := range s.ReadAll(ctxFor(t), 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s@%d:%d", r.StreamID, r.Version, r.Position))
	}
	return out
}

// TestUnfinishedLifecycleWrites: a lifecycle write whose writer died
// between its steps. Before its marker, it is not in force, and the next
// writer lands it (or finds it can no longer land); after its marker, it is
// in force for every reader, though the index still holds the intent.
func TestUnfinishedLifecycleWrites(t *testing.T) {
	for name, tgt := range targets(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, tgt(t))
			ctx := ctxFor(t)
			var de *eventsource.StreamDeletedError

			// A hard delete that died after its marker: in force.
			appendN(t, s, "dead-tomb", 3)
			if err := esnats.PlantWrite(ctx, s, "dead-tomb", "tombstone", eventsource.StreamMetadata{}, true, true); err != nil {
				t.Fatal(err)
			}
			wantDeleted := func(what string, err error) {
				t.Helper()
				if !errors.As(err, &de) {
					t.Fatalf("%s of a stream whose hard delete died after its marker: %v, want a *StreamDeletedError", what, err)
				}
			}
			for _, err := range s.ReadStream(ctx, "dead-tomb", 1, 0) {
				wantDeleted("ReadStream", err)
			}
			_, err := s.Append(ctx, "dead-tomb", eventsource.Any, []eventsource.Record{rec("E", "x")})
			wantDeleted("Append", err)
			_, _, err = s.StreamMetadata(ctx, "dead-tomb")
			wantDeleted("StreamMetadata", err)
			if _, log := seen(t, s, "dead-tomb"); len(log) != 0 {
				t.Fatalf("the global log holds %v of a hard-deleted stream", log)
			}
			if res, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil || res.Removed != 3 {
				t.Fatalf("Scavenge = %+v, %v; want the 3 commits removed", res, err)
			}

			// A truncation that died before its marker: not in force;
			// the next metadata write lands it first (version 1), then
			// writes its own (version 2), and the cut stays.
			appendN(t, s, "dead-trunc", 4)
			if err := esnats.PlantWrite(ctx, s, "dead-trunc", "metadata", eventsource.StreamMetadata{TruncateBefore: 3}, false, false); err != nil {
				t.Fatal(err)
			}
			wantSeen(t, s, "dead-trunc", "[1 2 3 4]")
			if md, v, err := s.StreamMetadata(ctx, "dead-trunc"); err != nil || v != 0 || md.TruncateBefore != 0 {
				t.Fatalf("StreamMetadata while the write is pending = %+v, %d, %v", md, v, err)
			}
			var ce *eventsource.ConcurrencyError
			if _, err := s.SetStreamMetadata(ctx, "dead-trunc", eventsource.NoStream, eventsource.StreamMetadata{}); !errors.As(err, &ce) || ce.Actual != 1 {
				t.Fatalf("SetStreamMetadata(NoStream) over a pending write: %v, want a conflict at 1 (it landed first)", err)
			}
			if v, err := s.SetStreamMetadata(ctx, "dead-trunc", eventsource.Exact(1), eventsource.StreamMetadata{}); err != nil || v != 2 {
				t.Fatalf("SetStreamMetadata(Exact(1)) = %d, %v", v, err)
			}
			wantSeen(t, s, "dead-trunc", "[3 4]")

			// A truncation that died before its marker, then many
			// appends: a reader lands it rather than look past them all
			// each time, at the version the stream has by then.
			appendN(t, s, "dead-long", 2)
			if err := esnats.PlantWrite(ctx, s, "dead-long", "metadata", eventsource.StreamMetadata{TruncateBefore: 2}, false, false); err != nil {
				t.Fatal(err)
			}
			appendN(t, s, "dead-long", 40)
			if md, v, err := s.StreamMetadata(ctx, "dead-long"); err != nil || v != 1 || md.TruncateBefore != 2 {
				t.Fatalf("StreamMetadata after 40 appends past a pending write = %+v, %d, %v; want it landed", md, v, err)
			}
			if byStream, byLog := seen(t, s, "dead-long"); len(byStream) != 41 || byStream[0] != 2 || fmt.Sprint(byLog) != fmt.Sprint(byStream) {
				t.Fatalf("after the landing: %v by stream, %v in the log", byStream, byLog)
			}

			// An exact soft delete that died before its marker, then an
			// append: it can no longer land, so nothing is deleted.
			appendN(t, s, "dead-del", 2)
			if err := esnats.PlantWrite(ctx, s, "dead-del", "delete", eventsource.StreamMetadata{}, true, false); err != nil {
				t.Fatal(err)
			}
			appendN(t, s, "dead-del", 1)
			wantSeen(t, s, "dead-del", "[1 2 3]")
			if err := s.DeleteStream(ctx, "dead-del", eventsource.Exact(3)); err != nil {
				t.Fatal(err)
			}
			if md, v, err := s.StreamMetadata(ctx, "dead-del"); err != nil || v != 1 || md.TruncateBefore != 4 {
				t.Fatalf("after the dead delete and a live one: %+v at %d, %v; want TruncateBefore 4 at 1", md, v, err)
			}
			wantSeen(t, s, "dead-del", "[]")
		})
	}
}

// TestLegacyTombstone: a delete an earlier version of the store began and
// did not finish is finished by the next append, which starts the stream
// again at version 1, as that version promised.
func TestLegacyTombstone(t *testing.T) {
	s := newStore(t, targets(t)["InProcess"](t))
	ctx := ctxFor(t)
	appendN(t, s, "old", 3)
	if err := esnats.PlantLegacyTombstone(ctx, s, "old"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, "old"); len(got) != 0 {
		t.Fatalf("a stream deleted by an earlier version reads %d records", len(got))
	}
	if res, err := s.Append(ctx, "old", eventsource.NoStream, []eventsource.Record{rec("E", "new")}); err != nil || res.FirstVersion != 1 {
		t.Fatalf("Append after a legacy delete = %+v, %v; want version 1", res, err)
	}
	wantSeen(t, s, "old", "[1]")
}

// TestUpgradeWithoutIndex: a store set up by an earlier version has no
// lifecycle index; with WithoutAutoSetup it reads and appends as before,
// refuses lifecycle writes naming the missing stream, and Setup adds it.
func TestUpgradeWithoutIndex(t *testing.T) {
	tg := targets(t)["InProcess"](t)
	s := newStore(t, tg)
	ctx := ctxFor(t)
	appendN(t, s, "u", 2)
	if err := esnats.DropIndex(ctx, s); err != nil {
		t.Fatal(err)
	}
	old := esnats.New(tg.js, esnats.WithStreamName(esnats.StreamName(s)), esnats.WithSubjectPrefix(esnats.Prefix(s)), esnats.WithoutAutoSetup())
	defer old.Close()
	appendN(t, old, "u", 1)
	wantSeen(t, old, "u", "[1 2 3]")
	if _, err := old.SetStreamMetadata(ctx, "u", eventsource.Any, eventsource.StreamMetadata{TruncateBefore: 2}); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("SetStreamMetadata without the index: %v, want ErrNotFound", err)
	}
	if err := old.Verify(ctx); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("Verify without the index: %v, want ErrNotFound", err)
	}
	if err := old.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := old.SetStreamMetadata(ctx, "u", eventsource.Any, eventsource.StreamMetadata{TruncateBefore: 2}); err != nil {
		t.Fatal(err)
	}
	wantSeen(t, old, "u", "[2 3]")
}

// TestMaxAgeKeepsTombstone: with WithMaxAge the server expires a hard
// delete's marker with the rest, but the stream still refuses appends.
func TestMaxAgeKeepsTombstone(t *testing.T) {
	s := newStore(t, targets(t)["InProcess"](t), esnats.WithMaxAge(time.Second), esnats.WithDuplicateWindow(time.Second))
	ctx := ctxFor(t)
	appendN(t, s, "gone", 2)
	if err := s.TombstoneStream(ctx, "gone", eventsource.Exact(2)); err != nil {
		t.Fatal(err)
	}
	expired := func() bool { // the stream read no longer sees the marker
		for _, err := range s.ReadStream(ctx, "gone", 1, 0) {
			return err == nil
		}
		return true
	}
	for deadline := time.Now().Add(10 * time.Second); !expired(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the messages did not expire")
		}
	}
	if _, err := s.Append(ctx, "gone", eventsource.NoStream, []eventsource.Record{rec("E", "x")}); !errors.Is(err, eventsource.ErrStreamDeleted) {
		t.Fatalf("Append once the tombstone expired: %v, want ErrStreamDeleted", err)
	}
}

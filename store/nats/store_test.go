package nats_test

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
	esnats "github.com/eventsource-go/eventsource/store/nats"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func rec(typ, data string) eventsource.Record {
	return eventsource.Record{Type: typ, Codec: "json", Data: []byte(data)}
}

func readAll(t *testing.T, s eventsource.Store, stream string) []eventsource.Record {
	t.Helper()
	h, err := eventsource.ReadStreamAll(ctxFor(t), s, stream)
	if err != nil {
		t.Fatalf("ReadStream(%q): %v", stream, err)
	}
	return h
}

var awkward = []string{"a", "a.b", "a.b.c", "*", ">", "a.*", "a.>", "with space", "tab\there", "new\nline",
	"ünïcøde-流-🙂", "~", "~41", "a~2Eb", "-", "_", "$JS", "..", "%", "\u00a0", "A", strings.Repeat("é", 127)}

func TestSubjectTokens(t *testing.T) {
	for _, id := range awkward {
		tok := esnats.EncodeToken(id)
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("EncodeToken(%q) = %q: not one subject token", id, tok)
		}
		back, err := esnats.DecodeToken(tok)
		if err != nil || back != id {
			t.Fatalf("DecodeToken(EncodeToken(%q)) = %q, %v", id, back, err)
		}
	}
	seen := map[string]string{}
	for _, id := range awkward {
		tok := esnats.EncodeToken(id)
		if other, dup := seen[tok]; dup {
			t.Fatalf("%q and %q share the token %q", id, other, tok)
		}
		seen[tok] = id
	}
	for _, bad := range []string{"", "a.b", "~", "~4", "~zz", "~41", "a b", "~2e"} {
		if got, err := esnats.DecodeToken(bad); err == nil {
			t.Fatalf("DecodeToken(%q) = %q, want an error", bad, got)
		}
	}
}

func TestAwkwardStreamIDs(t *testing.T) {
	for name, tgt := range targets(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, tgt(t))
			ctx := ctxFor(t)
			for _, id := range awkward {
				if _, err := s.Append(ctx, id, eventsource.NoStream, []eventsource.Record{rec("E", id)}); err != nil {
					t.Fatalf("Append(%q): %v", id, err)
				}
				if subj := esnats.Subject(s, id); strings.Count(subj, ".") != 1 {
					t.Fatalf("stream %q has subject %q: not one token after the prefix", id, subj)
				}
			}
			for _, id := range awkward {
				got := readAll(t, s, id)
				if len(got) != 1 || got[0].StreamID != id || string(got[0].Data) != id {
					t.Fatalf("stream %q read back %d records (%+v)", id, len(got), got)
				}
				var n int
				for r, err := range s.ReadAll(ctx, 0, eventsource.Filter{Streams: []string{id}}) {
					if err != nil || r.StreamID != id {
						t.Fatalf("ReadAll(stream %q): %v %q", id, err, r.StreamID)
					}
					n++
				}
				if n != 1 {
					t.Fatalf("ReadAll(stream %q): %d records", id, n)
				}
			}
			var listed []string
			for info, err := range s.ListStreams(ctx, "a") {
				if err != nil {
					t.Fatal(err)
				}
				listed = append(listed, info.StreamID)
			}
			want := []string{"a", "a.*", "a.>", "a.b", "a.b.c", "a~2Eb"}
			if strings.Join(listed, "|") != strings.Join(want, "|") {
				t.Fatalf("ListStreams(a) = %q, want %q", listed, want)
			}
		})
	}
}

// TestRestart: with file storage, what was appended survives a server
// restart, and appends go on where they stopped.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	tg := connect(t, srv.ClientURL())
	opts := []esnats.Option{esnats.WithStreamName("RESTART"), esnats.WithSubjectPrefix("restart")}
	s := esnats.New(tg.js, opts...)
	first, err := s.Append(ctxFor(t), "acct-1", eventsource.NoStream, []eventsource.Record{rec("Opened", `{"n":1}`), rec("Deposited", `{"n":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	tg.nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()

	srv = startServer(t, dir)
	tg = connect(t, srv.ClientURL())
	s = esnats.New(tg.js, opts...)
	defer s.Close()
	got := readAll(t, s, "acct-1")
	if len(got) != 2 || got[1].Type != "Deposited" || got[0].Position != first.FirstPosition {
		t.Fatalf("after restart: %+v", got)
	}
	// The event ID index survived too: a retry is still recognised.
	again, err := s.Append(ctxFor(t), "acct-1", eventsource.NoStream, got)
	if err != nil || again != first {
		t.Fatalf("retry after restart: %+v, %v; want %+v", again, err, first)
	}
	res, err := s.Append(ctxFor(t), "acct-1", eventsource.Exact(2), []eventsource.Record{rec("Withdrawn", "{}")})
	if err != nil || res.FirstVersion != 3 || res.FirstPosition <= first.LastPosition {
		t.Fatalf("append after restart: %+v, %v", res, err)
	}
}

func TestCancelledContext(t *testing.T) {
	tg := targets(t)["InProcess"](t)
	s := newStore(t, tg)
	for i := 0; i < 40; i++ { // enough commits for a read to switch to a consumer
		if _, err := s.Append(ctxFor(t), "c-1", eventsource.Any, []eventsource.Record{rec("E", "{}")}); err != nil {
			t.Fatal(err)
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(cancelled, "c-2", eventsource.NoStream, []eventsource.Record{rec("E", "{}")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append: %v", err)
	}
	if _, err := s.Head(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Head: %v", err)
	}
	// Cancelled in the middle of a read: the iterator ends with the error.
	for _, read := range []struct {
		name string
		seq  func(ctx context.Context) func(func(eventsource.Record, error) bool)
	}{
		{"ReadStream", func(ctx context.Context) func(func(eventsource.Record, error) bool) {
			return s.ReadStream(ctx, "c-1", 1, 0)
		}},
		{"ReadAll", func(ctx context.Context) func(func(eventsource.Record, error) bool) {
			return s.ReadAll(ctx, 0, eventsource.Filter{})
		}},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		n, last := 0, error(nil)
		for _, err := range read.seq(ctx) {
			if err != nil {
				last = err
				break
			}
			if n++; n == 20 {
				cancel()
			}
		}
		cancel()
		if !errors.Is(last, context.Canceled) || n != 20 {
			t.Fatalf("%s cancelled after 20 records: read %d, ended with %v", read.name, n, last)
		}
	}
	if got := readAll(t, s, "c-2"); len(got) != 0 {
		t.Fatalf("a cancelled append stored %d records", len(got))
	}
}

// TestTooLarge: an append that does not fit in one message is refused with
// ErrTooLarge before anything is sent.
func TestTooLarge(t *testing.T) {
	s := newStore(t, targets(t)["InProcess"](t))
	big := make([]eventsource.Record, 20)
	for i := range big {
		big[i] = eventsource.Record{Type: "Big", Data: bytes.Repeat([]byte{'x'}, 64<<10)}
	}
	if _, err := s.Append(ctxFor(t), "big-1", eventsource.NoStream, big); !errors.Is(err, eventsource.ErrTooLarge) {
		t.Fatalf("Append of 1.25 MiB: %v, want ErrTooLarge", err)
	}
	if got := readAll(t, s, "big-1"); len(got) != 0 {
		t.Fatalf("refused append stored %d records", len(got))
	}
}

// TestDeadClaims: an append that died between claiming its event IDs and
// committing leaves claims behind; they must not block a retry of the same
// append, nor an ID whose claimed place another event has taken, but they do
// block the ID elsewhere while the place is still free.
func TestDeadClaims(t *testing.T) {
	s := newStore(t, targets(t)["InProcess"](t))
	ctx := ctxFor(t)
	withID := func(id string) []eventsource.Record {
		r := rec("E", "{}")
		r.EventID = id
		return []eventsource.Record{r}
	}
	// The retry goes to the very place the dead append claimed.
	if err := esnats.PlantClaim(ctx, s, "dead-1", "dc-1", 1); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Append(ctx, "dc-1", eventsource.NoStream, withID("dead-1")); err != nil || res.LastVersion != 1 {
		t.Fatalf("retry of a dead append: %+v, %v", res, err)
	}
	// The claimed place holds another event now: the claim is dead.
	if err := esnats.PlantClaim(ctx, s, "dead-2", "dc-1", 1); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Append(ctx, "dc-2", eventsource.NoStream, withID("dead-2")); err != nil || res.LastVersion != 1 {
		t.Fatalf("append over a dead claim: %+v, %v", res, err)
	}
	// The claimed place is free: the ID may still land there.
	if err := esnats.PlantClaim(ctx, s, "dead-3", "dc-1", 5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "dc-3", eventsource.NoStream, withID("dead-3")); !errors.Is(err, eventsource.ErrDuplicateEvent) {
		t.Fatalf("append of an ID claimed elsewhere: %v, want ErrDuplicateEvent", err)
	}
	if got := readAll(t, s, "dc-3"); len(got) != 0 {
		t.Fatalf("refused append stored %d records", len(got))
	}
}

// TestCorruptMessage: bytes on a stream's subject that are not a commit are
// reported as ErrCorruptData, never a panic.
func TestCorruptMessage(t *testing.T) {
	tg := targets(t)["InProcess"](t)
	s := newStore(t, tg)
	for _, body := range [][]byte{{}, {1}, {1, 1, 1, 200}, []byte("garbage"), {1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		id := "corrupt-" + string(rune('a'+len(body)))
		if _, err := tg.js.Publish(ctxFor(t), esnats.Subject(s, id), body); err != nil {
			t.Fatal(err)
		}
		for _, err := range s.ReadStream(ctxFor(t), id, 1, 0) {
			if !errors.Is(err, eventsource.ErrCorruptData) {
				t.Fatalf("body %q: ReadStream yielded %v, want ErrCorruptData", body, err)
			}
		}
		// Append reads only a commit's versions: a body whose versions
		// are readable lets it go on.
		if _, err := s.Append(ctxFor(t), id, eventsource.Any, []eventsource.Record{rec("E", "{}")}); err != nil && !errors.Is(err, eventsource.ErrCorruptData) {
			t.Fatalf("body %q: Append: %v, want ErrCorruptData or success", body, err)
		}
	}
}

// TestOpen: Open connects, sets the streams up and owns the connection.
func TestOpen(t *testing.T) {
	srv := startServer(t, t.TempDir())
	s, err := esnats.Open(ctxFor(t), srv.ClientURL(), esnats.WithStreamName("OPEN"), esnats.WithSubjectPrefix("open"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctxFor(t), "o-1", eventsource.NoStream, []eventsource.Record{rec("E", "{}")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Append(ctxFor(t), "o-1", eventsource.Any, []eventsource.Record{rec("E", "{}")}); !errors.Is(err, eventsource.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := esnats.Open(ctxFor(t), srv.ClientURL(), esnats.WithSubjectPrefix("bad prefix")); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("Open with a bad prefix: %v, want ErrInvalidConfig", err)
	}
}

// TestReadAllUnevenStreams: NATS 2.9 miscounts a wildcard consumer's pending
// messages when a stream whose first commit lies after the read's start
// sits beside one that must be scanned (here "c" and "a"): reads that trusted
// the count waited for messages that did not exist, or ended early. Every
// read from the middle must return exactly the commits after it.
func TestReadAllUnevenStreams(t *testing.T) {
	for name, tgt := range targets(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, tgt(t))
			ctx := ctxFor(t)
			var last eventsource.AppendResult
			for _, run := range []struct {
				stream string
				n      int
			}{{"a", 50}, {"b", 5}, {"a", 39}, {"c", 1}, {"a", 5}} {
				for i := 0; i < run.n; i++ {
					var err error
					if last, err = s.Append(ctx, run.stream, eventsource.Any, []eventsource.Record{rec("E", "{}")}); err != nil {
						t.Fatal(err)
					}
				}
			}
			head := last.LastPosition >> 16 // 100 commits, one per sequence
			for from := head - 20; from <= head; from++ {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				n := 0
				for _, err := range s.ReadAll(rctx, from<<16, eventsource.Filter{}) {
					if err != nil {
						t.Fatalf("ReadAll from commit %d: %v", from, err)
					}
					n++
				}
				cancel()
				if want := int(head - from + 1); n != want {
					t.Fatalf("ReadAll from commit %d: %d records, want %d", from, n, want)
				}
			}
		})
	}
}

// TestReadAllPurgedTail: a read bounded by the log's last commit ends when
// that commit has gone (purged by hand, or expired with WithMaxAge: the
// store's own scavenge keeps each stream's last message), instead of
// waiting for it.
func TestReadAllPurgedTail(t *testing.T) {
	for name, tgt := range targets(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, tgt(t))
			ctx := ctxFor(t)
			for i := 0; i < 20; i++ { // enough commits for the read to switch to a consumer
				if _, err := s.Append(ctx, "kept", eventsource.Any, []eventsource.Record{rec("E", "{}")}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Append(ctx, "gone", eventsource.NoStream, []eventsource.Record{rec("E", "{}")}); err != nil {
				t.Fatal(err)
			}
			if err := esnats.PurgeStream(ctx, s, "gone"); err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			n := 0
			for r, err := range s.ReadAll(rctx, 0, eventsource.Filter{}) {
				if err != nil {
					t.Fatalf("ReadAll: %v", err)
				}
				if r.StreamID != "kept" {
					t.Fatalf("ReadAll returned a record of %q", r.StreamID)
				}
				n++
			}
			if n != 20 {
				t.Fatalf("ReadAll: %d records, want 20", n)
			}
		})
	}
}

// TestDeleteDuringAppends soft-deletes a stream while writers append to it
// with IDs of their own: what survives reads contiguous from the delete's
// version + 1 (versions continue), the deleted IDs stay taken until a
// scavenge removes their commits, and then every one can be used again
// (its claim is released).
func TestDeleteDuringAppends(t *testing.T) {
	for name, tgt := range targets(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, tgt(t))
			ctx := ctxFor(t)
			for round := 0; round < 5; round++ {
				stream := fmt.Sprintf("dda-%d", round)
				var mu sync.Mutex
				var appended []string
				stop := make(chan struct{})
				var wg sync.WaitGroup
				errs := make(chan error, 4)
				for w := 0; w < 4; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							default:
							}
							r := rec("E", "{}")
							r.EventID = fmt.Sprintf("dda-%d-%d-%d", round, w, i)
							if _, err := s.Append(ctx, stream, eventsource.Any, []eventsource.Record{r}); err != nil {
								errs <- err
								return
							}
							mu.Lock()
							appended = append(appended, r.EventID)
							mu.Unlock()
						}
					}()
				}
				for {
					mu.Lock()
					n := len(appended)
					mu.Unlock()
					if n >= 12 || len(errs) > 0 {
						break
					}
					time.Sleep(200 * time.Microsecond)
				}
				err := s.DeleteStream(ctx, stream, eventsource.Any)
				close(stop)
				wg.Wait()
				close(errs)
				if err != nil {
					t.Fatalf("DeleteStream: %v", err)
				}
				for err := range errs {
					t.Fatalf("Append: %v", err)
				}
				md, _, err := s.StreamMetadata(ctx, stream)
				if err != nil {
					t.Fatal(err)
				}
				kept := map[string]bool{}
				for i, r := range readAll(t, s, stream) {
					if r.Version != md.TruncateBefore+int64(i) {
						t.Fatalf("record %d of the surviving stream has version %d, deleted at %d", i, r.Version, md.TruncateBefore-1)
					}
					kept[r.EventID] = true
				}
				var again []eventsource.Record
				for _, id := range appended {
					if !kept[id] {
						r := rec("E", "{}")
						r.EventID = id
						again = append(again, r)
					}
				}
				if len(again) < 12 {
					t.Fatalf("round %d: the delete retired %d records, want at least 12", round, len(again))
				}
				if _, err := s.Append(ctx, stream+"-early", eventsource.NoStream, again[:1]); !errors.Is(err, eventsource.ErrDuplicateEvent) {
					t.Fatalf("round %d: a deleted ID supplied again before a scavenge: %v, want ErrDuplicateEvent", round, err)
				}
				if _, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Append(ctx, stream+"-again", eventsource.NoStream, again); err != nil {
					t.Fatalf("round %d: the %d deleted IDs supplied again: %v", round, len(again), err)
				}
			}
		})
	}
}

// TestReadStreamFromTheMiddle reads a stream from every version, with a
// batch size small enough that reads past the first few versions find their
// first commit by bisection, over commits of one to three events
// interleaved with another stream's.
func TestReadStreamFromTheMiddle(t *testing.T) {
	for name, tgt := range targets(t) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, tgt(t), esnats.WithBatchSize(2))
			ctx := ctxFor(t)
			for i := 0; i < 40; i++ {
				batch := make([]eventsource.Record, 1+i%3)
				for j := range batch {
					batch[j] = rec("E", fmt.Sprintf(`{"i":%d,"j":%d}`, i, j))
				}
				if _, err := s.Append(ctx, "mid", eventsource.Any, batch); err != nil {
					t.Fatal(err)
				}
				for k := 0; k < i%4; k++ {
					if _, err := s.Append(ctx, "other", eventsource.Any, []eventsource.Record{rec("O", "{}")}); err != nil {
						t.Fatal(err)
					}
				}
			}
			whole := readAll(t, s, "mid")
			n := int64(len(whole))
			if n != 79 {
				t.Fatalf("stream holds %d records, want 79", n)
			}
			for from := int64(1); from <= n+1; from++ {
				for _, to := range []int64{0, from, from + 4} {
					var got []eventsource.Record
					for r, err := range s.ReadStream(ctx, "mid", from, to) {
						if err != nil {
							t.Fatalf("ReadStream(%d, %d): %v", from, to, err)
						}
						got = append(got, r)
					}
					want := whole[min(from-1, n):]
					if to > 0 {
						want = whole[min(from-1, n):min(to, n)]
					}
					if len(got) != len(want) {
						t.Fatalf("ReadStream(%d, %d): %d records, want %d", from, to, len(got), len(want))
					}
					for i := range got {
						if got[i].Version != want[i].Version || got[i].EventID != want[i].EventID || !bytes.Equal(got[i].Data, want[i].Data) {
							t.Fatalf("ReadStream(%d, %d): record %d is version %d, want %d", from, to, i, got[i].Version, want[i].Version)
						}
					}
				}
			}
		})
	}
}

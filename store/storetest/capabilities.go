package storetest

// Optional capabilities, tested on every store whose type implements them.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
)

func testNotify(t *testing.T, f Features, s eventsource.Store) {
	n, _ := eventsource.As[eventsource.Notifier](s)
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
	h, _ := eventsource.As[eventsource.HeadReader](s)
	if p, err := h.Head(ctxFor(t)); err != nil || p != 0 {
		t.Fatalf("Head of an empty store = %d, %v", p, err)
	}
	res := mustAppend(t, s, "head-1", eventsource.NoStream, recs(3, "H")...)
	if p, err := h.Head(ctxFor(t)); err != nil || p != res.LastPosition {
		t.Fatalf("Head = %d, %v; want %d", p, err, res.LastPosition)
	}
}

func testListStreams(t *testing.T, f Features, s eventsource.Store) {
	l, _ := eventsource.As[eventsource.StreamLister](s)
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
	d, _ := eventsource.As[eventsource.StreamDeleter](s)
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
	if res.LastVersion != 4 || res.FirstPosition <= kept.LastPosition {
		t.Fatalf("append after delete: %+v (the delete is soft: versions continue; positions are never reused)", res)
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
	// Deleting a stream while others append to it: whatever survives is
	// contiguous.
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
		got := readStream(t, s, stream, 1, 0)
		for i, r := range got {
			if r.Version != got[0].Version+int64(i) {
				t.Fatalf("round %d: after a delete during appends, record %d of the stream has version %d", round, i, r.Version)
			}
		}
		// The survivors are the appends after the delete: they continue
		// the deleted versions.
		if l, ok := eventsource.As[eventsource.StreamLifecycle](s); ok && len(got) > 0 {
			md, _, err := l.StreamMetadata(ctx, stream)
			if err != nil || md.TruncateBefore < 9 || got[0].Version != md.TruncateBefore {
				t.Fatalf("round %d: deleted before %d (%v), the stream reads versions %d-%d afterwards", round, md.TruncateBefore, err, got[0].Version, got[len(got)-1].Version)
			}
		}
	}
}

func testReservations(t *testing.T, f Features, s eventsource.Store) {
	r, _ := eventsource.As[eventsource.Reserver](s)
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

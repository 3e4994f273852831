package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
	"github.com/eventsource-go/eventsource/store/storetest"
)

// cleanups run after all tests and benchmarks (shared fixtures).
var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	pgtest.Close()
	os.Exit(code)
}

// newStore returns a migrated store in a fresh schema, closed when the test
// ends.
func newStore(t testing.TB, opts ...postgres.Option) (*postgres.Store, string) {
	t.Helper()
	schema := pgtest.Schema(t, "es_t_")
	s := postgres.New(pgtest.Pool(t), append([]postgres.Option{postgres.WithSchema(schema)}, opts...)...)
	t.Cleanup(func() { s.Close() }) // before the schema is dropped (cleanups run last first)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s, schema
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Features{
		Notify: true, Head: true, ListStreams: true, DeleteStream: true, Reservations: true, Snapshots: true,
		Lifecycle: true, Scavenge: true, SlowType: slowType,
	}, func(t *testing.T) eventsource.Store {
		s, _ := holdingStore(t, "es_events")
		return s
	})
	t.Run("LiveSubscriber", func(t *testing.T) {
		t.Parallel()
		s, _ := holdingStore(t, "es_events")
		projectiontest.LiveSubscriber(t, s, projectiontest.SubscriptionOptions{SlowType: slowType})
	})
}

// Small batches make every read cross many batch boundaries.
func TestConformanceSmallBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.Run(t, storetest.Features{Head: true, ListStreams: true, DeleteStream: true, SlowType: slowType, Writers: 4, AppendsPerWriter: 20},
		func(t *testing.T) eventsource.Store {
			s, _ := holdingStore(t, "events", postgres.WithBatchSize(7), postgres.WithTablePrefix(""), postgres.WithNotify(false))
			return s
		})
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func recs(n int, typ string) []eventsource.Record {
	out := make([]eventsource.Record, n)
	for i := range out {
		out[i] = eventsource.Record{Type: typ, Codec: "json", Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return out
}

func readAll(t *testing.T, s eventsource.Store) []eventsource.Record {
	t.Helper()
	var out []eventsource.Record
	for r, err := range s.ReadAll(ctxFor(t), 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func TestInvalidConfig(t *testing.T) {
	cases := []postgres.Option{
		postgres.WithTablePrefix(`x"; DROP TABLE y; --`),
		postgres.WithTablePrefix(strings.Repeat("p", 31)),
		postgres.WithSchema("1abc"),
		postgres.WithSchema("a-b"),
		postgres.WithBatchSize(0),
		postgres.WithMaxDataSize(-1),
	}
	for i, opt := range cases {
		if _, err := postgres.Open(context.Background(), "postgres://127.0.0.1:1/none", opt); !errors.Is(err, eventsource.ErrInvalidConfig) {
			t.Errorf("case %d: Open = %v, want ErrInvalidConfig", i, err)
		}
		s := postgres.New(nil, opt)
		if _, err := s.Append(context.Background(), "s", eventsource.Any, recs(1, "E")); !errors.Is(err, eventsource.ErrInvalidConfig) {
			t.Errorf("case %d: Append = %v, want ErrInvalidConfig", i, err)
		}
		for _, err := range s.ReadAll(context.Background(), 0, eventsource.Filter{}) {
			if !errors.Is(err, eventsource.ErrInvalidConfig) {
				t.Errorf("case %d: ReadAll = %v, want ErrInvalidConfig", i, err)
			}
		}
	}
	// Oversized data is refused before any I/O: this store has no server.
	s := postgres.New(nil, postgres.WithMaxDataSize(10))
	if _, err := s.Append(context.Background(), "s", eventsource.Any, []eventsource.Record{{Type: "T", Data: make([]byte, 11)}}); !errors.Is(err, eventsource.ErrTooLarge) {
		t.Errorf("oversized: %v, want ErrTooLarge", err)
	}
	// The default limits (the conformance suite tests them) cover the
	// portable ones.
	if l, p := postgres.New(nil).Limits(), eventsource.PortableLimits(); !l.Covers(p) {
		t.Errorf("default limits %+v do not cover the portable %+v", l, p)
	}
}

func TestMigrateConcurrent(t *testing.T) {
	p := pgtest.Pool(t)
	ctx := ctxFor(t)
	schema := testenv.Name("es_t_") // Migrate creates it
	t.Cleanup(func() { p.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := postgres.New(p, postgres.WithSchema(schema), postgres.WithTablePrefix("m_"), postgres.WithoutAutoMigrate())
			defer s.Close()
			errs[i] = s.Migrate(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate %d: %v", i, err)
		}
	}
	// Again, from a new store: nothing to do.
	s := postgres.New(p, postgres.WithSchema(schema), postgres.WithTablePrefix("m_"))
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	var n int
	files, _ := filepath.Glob("migrations/*.up.sql")
	if err := p.QueryRow(ctx, "SELECT count(*) FROM "+schema+".m_schema_migrations").Scan(&n); err != nil || n != len(files) {
		t.Fatalf("schema_migrations holds %d rows (%v), want one per migration file (%d)", n, err, len(files))
	}
	// Auto-migrated store in another prefix of the same schema works at once.
	s2 := postgres.New(p, postgres.WithSchema(schema), postgres.WithTablePrefix("auto_"))
	defer s2.Close()
	if _, err := s2.Append(ctx, "a-1", eventsource.NoStream, recs(1, "E")); err != nil {
		t.Fatalf("Append on an auto-migrated store: %v", err)
	}
}

func TestAppendTx(t *testing.T) {
	s, schema := newStore(t)
	p := pgtest.Pool(t)
	ctx := ctxFor(t)
	if _, err := p.Exec(ctx, "CREATE TABLE "+schema+".side (note text)"); err != nil {
		t.Fatal(err)
	}
	sideRows := func() int {
		var n int
		if err := p.QueryRow(ctx, "SELECT count(*) FROM "+schema+".side").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("commit", func(t *testing.T) {
		tx, err := p.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		r1, err := s.AppendTx(ctx, tx, "tx-a", eventsource.NoStream, recs(2, "A"))
		if err != nil {
			t.Fatalf("AppendTx 1: %v", err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".side VALUES ('hello')"); err != nil {
			t.Fatal(err)
		}
		r2, err := s.AppendTx(ctx, tx, "tx-b", eventsource.NoStream, recs(3, "B"))
		if err != nil {
			t.Fatalf("AppendTx 2: %v", err)
		}
		if r2.FirstPosition <= r1.LastPosition || r1.LastVersion != 2 || r2.LastVersion != 3 {
			t.Fatalf("results %+v then %+v", r1, r2)
		}
		if n := len(readAll(t, s)); n != 0 {
			t.Fatalf("uncommitted appends visible: %d records", n)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		all := readAll(t, s)
		if len(all) != 5 || all[0].StreamID != "tx-a" || all[4].StreamID != "tx-b" || all[0].Position != r1.FirstPosition || all[4].Position != r2.LastPosition {
			t.Fatalf("after commit: %d records", len(all))
		}
		if sideRows() != 1 {
			t.Fatal("the unrelated write did not commit")
		}
	})

	t.Run("rollback", func(t *testing.T) {
		tx, err := p.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendTx(ctx, tx, "tx-c", eventsource.NoStream, recs(2, "C")); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".side VALUES ('gone')"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(readAll(t, s)); n != 5 {
			t.Fatalf("after rollback the log holds %d records, want 5", n)
		}
		if h, err := eventsource.ReadStreamAll(ctx, s, "tx-c"); err != nil || len(h) != 0 {
			t.Fatalf("rolled-back stream: %d records, %v", len(h), err)
		}
		if sideRows() != 1 {
			t.Fatal("the unrelated write survived a rollback")
		}
	})

	t.Run("conflict leaves the transaction usable", func(t *testing.T) {
		tx, err := p.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		var ce *eventsource.ConcurrencyError
		if _, err := s.AppendTx(ctx, tx, "tx-a", eventsource.NoStream, recs(1, "A")); !errors.As(err, &ce) || ce.Actual != 2 {
			t.Fatalf("AppendTx at a stale version: %v", err)
		}
		if _, err := s.AppendTx(ctx, tx, "tx-d", eventsource.NoStream, []eventsource.Record{{Type: "D", EventID: "tx-b-dup"}, {Type: "D", EventID: mustEventID(t, s, "tx-b", 1)}}); !errors.Is(err, eventsource.ErrDuplicateEvent) {
			t.Fatalf("AppendTx of a stored event ID: %v, want ErrDuplicateEvent", err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".side VALUES ('after conflict')"); err != nil {
			t.Fatalf("transaction unusable after a conflict: %v", err)
		}
		if _, err := s.AppendTx(ctx, tx, "tx-a", eventsource.Exact(2), recs(1, "A")); err != nil {
			t.Fatalf("AppendTx after a conflict: %v", err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if h, _ := eventsource.ReadStreamAll(ctx, s, "tx-a"); len(h) != 3 {
			t.Fatalf("tx-a holds %d records, want 3", len(h))
		}
		if sideRows() != 2 {
			t.Fatal("the write after the conflict did not commit")
		}
	})

	t.Run("too many events in one transaction", func(t *testing.T) {
		tx, err := p.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		// Fill the transaction's position range up to its last slot by hand
		// rather than with a million events.
		if _, err := tx.Exec(ctx, `INSERT INTO `+schema+`.es_events (position, stream_id, version, event_id, type, codec, data)
			VALUES (((pg_current_xact_id()::text::bigint + 1) << 20) - 1, 'filler', 1, 'filler-1', 'F', '', '')`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendTx(ctx, tx, "tx-e", eventsource.NoStream, recs(1, "E")); !errors.Is(err, eventsource.ErrTooLarge) {
			t.Fatalf("AppendTx past the transaction's range: %v, want ErrTooLarge", err)
		}
		if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatalf("transaction unusable after ErrTooLarge: %v", err)
		}
	})
}

func mustEventID(t *testing.T, s eventsource.Store, stream string, version int64) string {
	t.Helper()
	for r, err := range s.ReadStream(ctxFor(t), stream, version, version) {
		if err != nil {
			t.Fatal(err)
		}
		return r.EventID
	}
	t.Fatalf("no record %s@%d", stream, version)
	return ""
}

// TestKilledConnection terminates the backend of an append after its
// records are written, while the database holds its commit: the append
// fails with an error, leaves nothing behind, and the store keeps working.
func TestKilledConnection(t *testing.T) {
	s, schema := holdingStore(t, "es_events")
	p := pgtest.Pool(t)
	for i := 0; i < 3; i++ {
		ctx := ctxFor(t)
		h := holdCommits(t, schema)
		done := make(chan error, 1)
		go func() {
			_, err := s.Append(ctx, "killed-1", eventsource.Any, recs(3, heldType))
			done <- err
		}()
		var killed bool
		if err := p.QueryRow(ctx, "SELECT pg_terminate_backend($1, 5000)", h.held()).Scan(&killed); err != nil || !killed {
			t.Fatalf("terminate the append's backend: %v, %v", killed, err)
		}
		err := <-done
		h.release()
		if err == nil {
			t.Fatal("Append on a terminated connection succeeded")
		}
		if errors.Is(err, eventsource.ErrConcurrency) || !strings.HasPrefix(err.Error(), "postgres: append") {
			t.Fatalf("Append on a terminated connection: %v", err)
		}
		t.Logf("append %d: %v", i, err)
		if h, err := eventsource.ReadStreamAll(ctx, s, "killed-1"); err != nil || len(h) != 0 {
			t.Fatalf("after the kill the stream holds %d records (%v)", len(h), err)
		}
	}
	ctx := ctxFor(t)
	for i := 0; i < 30; i++ { // more than the pool's connections, so a dead one would surface
		if _, err := s.Append(ctx, "killed-1", eventsource.Exact(int64(i)), recs(1, "K")); err != nil {
			t.Fatalf("Append %d after the kills: %v", i, err)
		}
	}
}

// TestHeldCommit holds one append's commit open in the database (for 300ms
// after it is seen waiting) while later appends commit: ReadAll must not yield the later ones
// until the held one commits, then yields all of them in order. Without a
// read wait, a read during the hold yields nothing; with one, it waits for
// the held commit.
func TestHeldCommit(t *testing.T) {
	for _, wait := range []time.Duration{0, 2 * time.Second} {
		t.Run(fmt.Sprintf("wait=%v", wait), func(t *testing.T) { testHeldCommit(t, wait) })
	}
}

func testHeldCommit(t *testing.T, wait time.Duration) {
	s, schema := holdingStore(t, "es_events", postgres.WithReadWait(wait))
	ctx := ctxFor(t)
	lock := holdCommits(t, schema)
	var held sync.WaitGroup
	held.Add(1)
	var heldErr error
	var heldOver atomicBool
	go func() {
		defer held.Done()
		_, heldErr = s.Append(ctx, "held-1", eventsource.NoStream, recs(2, heldType))
		heldOver.set()
	}()
	lock.held()
	time.AfterFunc(300*time.Millisecond, lock.release)
	var later []eventsource.AppendResult
	for i := 0; i < 3; i++ {
		res, err := s.Append(ctx, fmt.Sprintf("later-%d", i), eventsource.NoStream, recs(2, "Later"))
		if err != nil {
			t.Fatal(err)
		}
		later = append(later, res)
		// A stream read sees a committed append at once.
		if h, err := eventsource.ReadStreamAll(ctx, s, res.StreamID); err != nil || len(h) != 2 {
			t.Fatalf("ReadStream(%s) = %d records, %v", res.StreamID, len(h), err)
		}
	}
	if heldOver.get() {
		t.Fatal("the held append finished before the later ones")
	}
	var during []eventsource.Record
	for r, err := range s.ReadAll(ctx, 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		// The held append's records come first: a later one yielded before
		// them was yielded while the older transaction was open. (The held
		// records themselves may come before its Append has returned: the
		// commit is visible a moment before the call returns.)
		if len(during) < 2 && r.StreamID != "held-1" {
			t.Fatalf("ReadAll yielded %s@%d while an older transaction was open", r.StreamID, r.Position)
		}
		during = append(during, r)
	}
	h, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if wait == 0 && (len(during) != 0 || (!heldOver.get() && h != 0)) {
		t.Fatalf("without a read wait, a read during the hold saw %d records, head %d", len(during), h)
	}
	if wait > 0 && len(during) != 8 {
		t.Fatalf("with a read wait, a read during the hold yielded %d records, want all 8 after the commit", len(during))
	}
	held.Wait()
	if heldErr != nil {
		t.Fatalf("held append: %v", heldErr)
	}
	got := readAll(t, s)
	if len(got) != 8 {
		t.Fatalf("after the commit ReadAll yielded %d records, want 8", len(got))
	}
	if got[0].StreamID != "held-1" || got[1].StreamID != "held-1" {
		t.Fatalf("the held append (older transaction) is not first: %s, %s", got[0].StreamID, got[1].StreamID)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Position <= got[i-1].Position {
			t.Fatalf("positions out of order: %d then %d", got[i-1].Position, got[i].Position)
		}
	}
	for i, res := range later {
		if got[2+2*i].Position != res.FirstPosition || got[3+2*i].Position != res.LastPosition {
			t.Fatalf("later append %d at %d..%d, log has %d..%d", i, res.FirstPosition, res.LastPosition, got[2+2*i].Position, got[3+2*i].Position)
		}
	}
}

type atomicBool struct {
	mu sync.Mutex
	v  bool
}

func (b *atomicBool) set() { b.mu.Lock(); b.v = true; b.mu.Unlock() }
func (b *atomicBool) get() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.v
}

// Filter values no record can hold select nothing, and never reach the
// server as invalid text.
func TestFilterBadValues(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxFor(t)
	if _, err := s.Append(ctx, "user-1", eventsource.NoStream, []eventsource.Record{{Type: "T", Metadata: map[string]string{"k": "v"}}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		f    eventsource.Filter
		want int
	}{
		{eventsource.Filter{Streams: []string{"\xff"}}, 0},
		{eventsource.Filter{Streams: []string{"\xff", "user-1"}}, 1},
		{eventsource.Filter{StreamPrefixes: []string{"a\x00"}}, 0},
		{eventsource.Filter{StreamPrefixes: []string{""}}, 1},
		{eventsource.Filter{Types: []string{"\xfe"}}, 0},
		{eventsource.Filter{Metadata: map[string]string{"k": "\xff"}}, 0},
		{eventsource.Filter{Metadata: map[string]string{"k": "v"}}, 1},
		{eventsource.Filter{Metadata: map[string]string{"k": "v", "": ""}}, 0},
	}
	for i, c := range cases {
		n := 0
		for _, err := range s.ReadAll(ctx, 0, c.f) {
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			n++
		}
		if n != c.want {
			t.Fatalf("case %d (%+v): %d records, want %d", i, c.f, n, c.want)
		}
	}
	for _, err := range s.ReadAll(ctx, 1<<63+5, eventsource.Filter{}) {
		t.Fatalf("ReadAll past int64: %v", err)
	}
}

func TestListStreamsPaged(t *testing.T) {
	s, _ := newStore(t, postgres.WithBatchSize(2))
	ctx := ctxFor(t)
	ids := []string{"ü-1", "ü-2", "ü-3", "üx", "u-1", "ü", "v", "ü-\U0010FFFF", "ý"}
	for _, id := range ids {
		if _, err := s.Append(ctx, id, eventsource.NoStream, recs(1, "L")); err != nil {
			t.Fatal(err)
		}
	}
	list := func(prefix string) []string {
		var out []string
		for info, err := range s.ListStreams(ctx, prefix) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, info.StreamID)
		}
		return out
	}
	if got := fmt.Sprint(list("ü-")); got != fmt.Sprint([]string{"ü-1", "ü-2", "ü-3", "ü-\U0010FFFF"}) {
		t.Fatalf("ListStreams(ü-) = %s", got)
	}
	if got := list("ü"); len(got) != 6 || got[0] != "ü" || got[5] != "üx" {
		t.Fatalf("ListStreams(ü) = %q", got)
	}
	if got := list(""); len(got) != len(ids) || got[0] != "u-1" || got[len(got)-1] != "ü-\U0010FFFF" && got[len(got)-1] != "ý" {
		t.Fatalf("ListStreams(\"\") = %q", got)
	}
	if got := list("\U0010FFFF"); len(got) != 0 {
		t.Fatalf("ListStreams(U+10FFFF) = %q", got)
	}
}

// TestNotifyReconnect: a second store on the same tables (another process,
// say) hears the first one's appends through LISTEN/NOTIFY, and keeps hearing
// them after its listener connection is killed.
func TestNotifyReconnect(t *testing.T) {
	writer, schema := newStore(t)
	p := pgtest.Pool(t)
	ctx := ctxFor(t)
	reader := postgres.New(p, postgres.WithSchema(schema))
	defer reader.Close()
	ch, err := reader.Notify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no signal after %s", what)
		}
	}
	listeners := func() []int32 {
		t.Helper()
		rows, err := p.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND strpos(query, $1) > 0`, schema+".")
		if err != nil {
			t.Fatal(err)
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			t.Fatal(err)
		}
		return pids
	}
	var pids []int32
	for deadline := time.Now().Add(10 * time.Second); len(pids) == 0; time.Sleep(10 * time.Millisecond) {
		if pids = listeners(); time.Now().After(deadline) {
			t.Fatal("the listener never connected")
		}
	}
	drain(ch)
	start := time.Now()
	if _, err := writer.Append(ctx, "n-1", eventsource.Any, recs(1, "N")); err != nil {
		t.Fatal(err)
	}
	wait("the first append")
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("signal took %v; NOTIFY should beat the 1s poll", d)
	}
	var killed bool
	if err := p.QueryRow(ctx, "SELECT pg_terminate_backend($1, 5000)", pids[0]).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate the listener: %v %v", killed, err)
	}
	for i := 0; i < 3; i++ {
		drain(ch)
		if _, err := writer.Append(ctx, "n-1", eventsource.Any, recs(1, "N")); err != nil {
			t.Fatal(err)
		}
		wait(fmt.Sprintf("append %d after the kill", i))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if now := listeners(); len(now) == 1 && now[0] != pids[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the listener did not reconnect")
		}
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestNotifyPolling: with NOTIFY off, the Head poll still signals.
func TestNotifyPolling(t *testing.T) {
	s, schema := newStore(t, postgres.WithNotify(false))
	ctx := ctxFor(t)
	reader := postgres.New(pgtest.Pool(t), postgres.WithSchema(schema), postgres.WithNotify(false))
	defer reader.Close()
	ch, err := reader.Notify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // let the poller learn the empty head
	if _, err := s.Append(ctx, "p-1", eventsource.Any, recs(1, "P")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal from the poll")
	}
}

func TestClosed(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxFor(t)
	ch, err := s.Notify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		for range ch {
		}
	}
	if _, err := s.Append(ctx, "c-1", eventsource.Any, recs(1, "C")); !errors.Is(err, eventsource.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := s.Notify(ctx); !errors.Is(err, eventsource.ErrClosed) {
		t.Fatalf("Notify after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpen(t *testing.T) {
	url := testenv.Postgres.URL(t)
	schema := pgtest.Schema(t, "es_t_")
	s, err := postgres.Open(ctxFor(t), url, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctxFor(t), "o-1", eventsource.NoStream, recs(1, "O")); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteStreamRacesAppends soft-deletes a stream again and again while
// writers append to it (Exact, Any and, through AppendTx, in transactions of
// their own, in READ COMMITTED and REPEATABLE READ, the latter with a
// snapshot taken a little before the append), then tombstones it, in a few
// rounds: the stream always holds versions 1..n with its streams row, what
// it shows after a delete is its versions from the cut on, contiguous, and
// no append commits after the tombstone.
func TestDeleteStreamRacesAppends(t *testing.T) {
	s, schema := newStore(t, postgres.WithNotify(false))
	deletes := 0
	for round := 0; round < 4; round++ {
		deletes += deleteRace(t, s, schema, fmt.Sprint("del-race-", round))
	}
	if deletes == 0 {
		t.Fatal("no delete found the stream")
	}
	t.Logf("%d deletes", deletes)
}

func deleteRace(t *testing.T, s *postgres.Store, schema, stream string) int {
	p := pgtest.Pool(t)
	ctx := ctxFor(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	fail := func(err error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}
	expected := func(err error) bool {
		var pgErr interface{ SQLState() string }
		return errors.Is(err, eventsource.ErrConcurrency) || errors.Is(err, eventsource.ErrStreamDeleted) ||
			(errors.As(err, &pgErr) && (pgErr.SQLState() == "40001" || pgErr.SQLState() == "40P01"))
	}
	writer := func(w int) {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var err error
			switch (w + i) % 4 {
			case 0: // the version read, or NoStream, which a soft-deleted stream takes
				var h []eventsource.Record
				if h, err = eventsource.ReadStreamAll(ctx, s, stream); err == nil {
					v := int64(0)
					if len(h) > 0 {
						v = h[len(h)-1].Version
					}
					_, err = s.Append(ctx, stream, eventsource.Exact(v), recs(1+i%2, "E"))
				}
			case 1:
				_, err = s.Append(ctx, stream, eventsource.Any, recs(1+i%2, "A"))
			case 2, 3: // AppendTx in READ COMMITTED, REPEATABLE READ
				iso := pgx.ReadCommitted
				if (w+i)%4 == 3 {
					iso = pgx.RepeatableRead
				}
				err = pgx.BeginTxFunc(ctx, p, pgx.TxOptions{IsoLevel: iso}, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, "SELECT 1"); err != nil { // the snapshot, in REPEATABLE READ
						return err
					}
					time.Sleep(time.Millisecond)
					_, err := s.AppendTx(ctx, tx, stream, eventsource.Any, recs(1+i%2, "T"))
					return err
				})
			}
			if err != nil && !expected(err) {
				fail(fmt.Errorf("writer %d: %w", w, err))
				return
			}
		}
	}
	head := func() int64 {
		t.Helper()
		var n, maxV, rows int64
		err := p.QueryRow(ctx, `SELECT count(*), coalesce(max(version), 0),
			(SELECT count(*) FROM `+schema+`.es_streams WHERE stream_id = $1)
			FROM `+schema+`.es_events WHERE stream_id = $1`, stream).Scan(&n, &maxV, &rows)
		if err != nil {
			t.Fatal(err)
		}
		if n != maxV || rows != 1 {
			t.Fatalf("stream holds %d events up to version %d, %d streams rows", n, maxV, rows)
		}
		return maxV
	}
	mustAppend(t, s, stream, eventsource.NoStream, recs(1, "E"))
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go writer(w)
	}
	deletes := 0
	for deadline := time.Now().Add(700 * time.Millisecond); time.Now().Before(deadline); {
		err := s.DeleteStream(ctx, stream, eventsource.Any)
		switch {
		case err == nil:
			deletes++
			md, _, err := s.StreamMetadata(ctx, stream)
			if err != nil {
				t.Fatal(err)
			}
			got, err := eventsource.ReadStreamAll(ctx, s, stream)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range got {
				if r.Version != md.TruncateBefore+int64(i) {
					t.Fatalf("after a delete at %d the stream reads versions %v", md.TruncateBefore-1, storetestVersions(got))
				}
			}
		case !errors.Is(err, eventsource.ErrNotFound):
			t.Fatalf("DeleteStream: %v", err)
		}
		head()
		time.Sleep(time.Millisecond)
	}
	if err := s.TombstoneStream(ctx, stream, eventsource.Any); err != nil {
		t.Fatalf("TombstoneStream during appends: %v", err)
	}
	last := head()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	for _, err := range failures {
		t.Error(err)
	}
	if v := head(); v != last {
		t.Fatalf("appends committed after the tombstone: the stream went from version %d to %d", last, v)
	}
	return deletes
}

func mustAppend(t *testing.T, s eventsource.Store, stream string, expected eventsource.ExpectedVersion, records []eventsource.Record) eventsource.AppendResult {
	t.Helper()
	res, err := s.Append(ctxFor(t), stream, expected, records)
	if err != nil {
		t.Fatalf("Append(%q, %s): %v", stream, expected, err)
	}
	return res
}

func storetestVersions(rs []eventsource.Record) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Version
	}
	return out
}

// TestReadAllPlanWithoutStatistics: on an events table PostgreSQL has no
// statistics for (just loaded, autovacuum off or not yet run), a page of
// the global log from the middle is still an index scan that stops after a
// page, never a scan and sort of everything after it, which made each of a
// new connection's first pages (custom plans) cost a pass over the rest of
// the log.
func TestReadAllPlanWithoutStatistics(t *testing.T) {
	s, schema := newStore(t)
	ctx := ctxFor(t)
	if _, err := s.Pool().Exec(ctx, `ALTER TABLE `+schema+`.es_events SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := s.Append(ctx, fmt.Sprint("plan-", i), eventsource.NoStream, recs(500, "P")); err != nil {
			t.Fatal(err)
		}
	}
	var mid int64
	if err := s.Pool().QueryRow(ctx, `SELECT position FROM `+schema+`.es_events ORDER BY position OFFSET 5000 LIMIT 1`).Scan(&mid); err != nil {
		t.Fatal(err)
	}
	sql, err := postgres.ReadAllSQL(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	plan := func() string {
		rows, err := s.Pool().Query(ctx, `EXPLAIN `+sql, mid, 100)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	if text := plan(); !strings.Contains(text, "Index Scan using es_events_pkey") || strings.Contains(text, "Bitmap") || strings.Contains(text, "Sort") {
		t.Fatalf("global-log page plan without statistics:\n%s", text)
	}
	// With rules, each row is a probe of the rules, and the page is still
	// an index scan in position order.
	if err := s.DeleteStream(ctx, "plan-3", eventsource.Any); err != nil {
		t.Fatal(err)
	}
	if text := plan(); !strings.Contains(text, "Index Scan using es_events_pkey") || strings.Contains(text, "Bitmap") || strings.Contains(text, "Sort") {
		t.Fatalf("global-log page plan with a rule, without statistics:\n%s", text)
	}
}

package mysql_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	"github.com/eventsource-go/eventsource/store/mysql"
	"github.com/eventsource-go/eventsource/store/storetest"
	"github.com/eventsource-go/eventsource/storekit"
)

var (
	sharedOnce sync.Once
	sharedDB   *sql.DB
	sharedErr  error
)

// testDB returns the *sql.DB all tests share, opened from the plain DSN
// (no parseTime, no interpolateParams): the store must not depend on them.
func testDB(t testing.TB) *sql.DB {
	t.Helper()
	dsn := testenv.MySQL.URL(t)
	sharedOnce.Do(func() {
		sharedDB, sharedErr = sql.Open("mysql", dsn)
		if sharedErr == nil {
			sharedDB.SetMaxOpenConns(60)
			sharedDB.SetMaxIdleConns(60)
		}
	})
	if sharedErr != nil {
		t.Fatalf("open %s: %v", dsn, sharedErr)
	}
	return sharedDB
}

func randomPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b) + "_"
}

// dropTables removes the tables of prefix.
func dropTables(db *sql.DB, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tbl := range []string{"events", "streams", "position", "schema_migrations", "reservations", "snapshots", "stream_rules", "inline_projections"} {
		_, _ = db.ExecContext(ctx, "DROP TABLE IF EXISTS `"+prefix+tbl+"`")
	}
}

// newStore returns a migrated store on its own table prefix, dropped when t
// ends.
func newStore(t testing.TB, opts ...mysql.Option) (*mysql.Store, string) {
	t.Helper()
	db := testDB(t)
	prefix := randomPrefix(t)
	s := mysql.New(db, append([]mysql.Option{mysql.WithTablePrefix(prefix)}, opts...)...)
	t.Cleanup(func() {
		s.Close()
		dropTables(db, prefix)
	})
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s, prefix
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Features{
		Notify: true, Head: true, ListStreams: true, DeleteStream: true, CommitHook: true, Reservations: true,
		Snapshots: true, Lifecycle: true, Scavenge: true,
	}, func(t *testing.T) eventsource.Store {
		s, _ := newStore(t, mysql.WithMaxDataSize(64<<10), mysql.WithBatchSize(100), mysql.WithPollInterval(20*time.Millisecond))
		return s
	})
	t.Run("LiveSubscriber", func(t *testing.T) {
		t.Parallel()
		s, _ := newStore(t, mysql.WithPollInterval(20*time.Millisecond))
		projectiontest.LiveSubscriber(t, s, projectiontest.SubscriptionOptions{CommitHook: true})
	})
}

// TestDefaultLimits proves the limits of a store with default options,
// opened with Open, whose interpolated statements escape data and metadata
// (the largest statements the store sends).
func TestDefaultLimits(t *testing.T) {
	storetest.RunLimits(t, func(t *testing.T) eventsource.Store {
		prefix := randomPrefix(t)
		s, err := mysql.Open(context.Background(), testenv.MySQL.URL(t), mysql.WithTablePrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			s.Close()
			dropTables(testDB(t), prefix)
		})
		return s
	})
}

// TestLimitsFollowMaxAllowedPacket: a data limit set above what the
// server's max_allowed_packet holds is lowered to it, and a record at the
// lowered limit, its data and metadata all bytes that escaping doubles (or
// more), goes through Open's interpolated statements.
func TestLimitsFollowMaxAllowedPacket(t *testing.T) {
	ctx := context.Background()
	prefix := randomPrefix(t)
	s, err := mysql.Open(ctx, testenv.MySQL.URL(t), mysql.WithTablePrefix(prefix), mysql.WithMaxDataSize(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		dropTables(testDB(t), prefix)
	})
	var packet int
	if err := testDB(t).QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&packet); err != nil {
		t.Fatal(err)
	}
	l := s.Limits()
	if want := (3*min(packet/3, 16<<20) - 7*l.MaxMetadataBytes - 8<<10) / 2; l.MaxDataBytes != want {
		t.Fatalf("max_allowed_packet %d: MaxDataBytes %d, want %d", packet, l.MaxDataBytes, want)
	}
	data := make([]byte, l.MaxDataBytes)
	for i := range data {
		data[i] = "\x00'\"\\\n\r\x1a"[i%7]
	}
	value := make([]byte, l.MaxMetadataBytes-1)
	for i := range value {
		value[i] = "\x01\"\\<>&\n\x1f"[i%8]
	}
	rec := eventsource.Record{Type: "Big", Data: data, Metadata: map[string]string{"m": string(value)}}
	if _, err := s.Append(ctx, "packet-1", eventsource.NoStream, []eventsource.Record{rec}); err != nil {
		t.Fatalf("a record of %d bytes of data at the limit: %v", len(data), err)
	}
	got, err := eventsource.ReadStreamAll(ctx, s, "packet-1")
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Data, data) || got[0].Metadata["m"] != string(value) {
		t.Fatalf("read back %d records, %v", len(got), err)
	}
	rec.Data = append(data, 0)
	if _, err := s.Append(ctx, "packet-1", eventsource.Exact(1), []eventsource.Record{rec}); !errors.Is(err, eventsource.ErrTooLarge) {
		t.Fatalf("a byte past the limit: %v, want ErrTooLarge", err)
	}
}

// TestOpen goes through Open's own pool (parseTime and interpolateParams
// on) and auto-migration.
func TestOpen(t *testing.T) {
	dsn := testenv.MySQL.URL(t)
	prefix := randomPrefix(t)
	ctx := context.Background()
	s, err := mysql.Open(ctx, dsn, mysql.WithTablePrefix(prefix))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { dropTables(testDB(t), prefix) })
	res, err := s.Append(ctx, "open-1", eventsource.NoStream, []eventsource.Record{{Type: "T", Data: []byte{0, 1, 2, '\'', '\\'}, Metadata: map[string]string{"a": `"'\`}}})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	h, err := eventsource.ReadStreamAll(ctx, s, "open-1")
	if err != nil || len(h) != 1 || string(h[0].Data) != "\x00\x01\x02'\\" || h[0].Metadata["a"] != `"'\` {
		t.Fatalf("read back %+v, %v", h, err)
	}
	if h[0].RecordedAt.Location() != time.UTC || time.Since(h[0].RecordedAt).Abs() > time.Minute {
		t.Fatalf("recorded at %v", h[0].RecordedAt)
	}
	if res.LastPosition != h[0].Position {
		t.Fatalf("position %d, append said %d", h[0].Position, res.LastPosition)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Append(ctx, "open-1", eventsource.Any, []eventsource.Record{{Type: "T"}}); !errors.Is(err, eventsource.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := mysql.Open(ctx, "not a dsn"); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("Open(bad DSN): %v, want ErrInvalidConfig", err)
	}
}

func TestInvalidConfig(t *testing.T) {
	db := testDB(t)
	cases := []struct {
		name string
		opt  mysql.Option
	}{
		{"quote in prefix", mysql.WithTablePrefix("es`; DROP TABLE x; --")},
		{"dash in prefix", mysql.WithTablePrefix("es-")},
		{"long prefix", mysql.WithTablePrefix("p123456789012345678901234567890123456789012")},
		{"batch", mysql.WithBatchSize(0)},
		{"poll", mysql.WithPollInterval(0)},
		{"max data", mysql.WithMaxDataSize(-1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mysql.New(db, c.opt)
			ctx := context.Background()
			if _, err := s.Append(ctx, "x", eventsource.Any, []eventsource.Record{{Type: "T"}}); !errors.Is(err, eventsource.ErrInvalidConfig) {
				t.Fatalf("Append: %v, want ErrInvalidConfig", err)
			}
			if err := s.Migrate(ctx); !errors.Is(err, eventsource.ErrInvalidConfig) {
				t.Fatalf("Migrate: %v, want ErrInvalidConfig", err)
			}
			for _, err := range s.ReadAll(ctx, 0, eventsource.Filter{}) {
				if !errors.Is(err, eventsource.ErrInvalidConfig) {
					t.Fatalf("ReadAll: %v, want ErrInvalidConfig", err)
				}
			}
		})
	}
}

// TestConcurrentMigrate: several stores (as several processes would) migrate
// one prefix at once; GET_LOCK makes them take turns and each migration
// runs once.
func TestConcurrentMigrate(t *testing.T) {
	db := testDB(t)
	prefix := randomPrefix(t)
	t.Cleanup(func() { dropTables(db, prefix) })
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- mysql.New(db, mysql.WithTablePrefix(prefix)).Migrate(context.Background())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	files, _ := filepath.Glob("migrations/*.up.sql")
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM `" + prefix + "schema_migrations`").Scan(&n); err != nil || n != len(files) {
		t.Fatalf("schema_migrations holds %d rows (%v), want one per migration file (%d)", n, err, len(files))
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM `" + prefix + "position`").Scan(&n); err != nil || n != 1 {
		t.Fatalf("position holds %d rows (%v), want 1", n, err)
	}
	s := mysql.New(db, mysql.WithTablePrefix(prefix), mysql.WithoutAutoMigrate())
	if _, err := s.Append(context.Background(), "m-1", eventsource.NoStream, []eventsource.Record{{Type: "T"}}); err != nil {
		t.Fatalf("Append after concurrent migrations: %v", err)
	}
}

// TestStreamIDsAreBytes: the default collations would merge these.
func TestStreamIDsAreBytes(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ids := []string{"abc", "ABC", "abc ", "äbc", "a\u0308bc"}
	for _, id := range ids {
		if _, err := s.Append(ctx, id, eventsource.NoStream, []eventsource.Record{{Type: "T", Metadata: map[string]string{"id": id}}}); err != nil {
			t.Fatalf("Append(%q): %v", id, err)
		}
	}
	for _, id := range ids {
		h, err := eventsource.ReadStreamAll(ctx, s, id)
		if err != nil || len(h) != 1 || h[0].StreamID != id {
			t.Fatalf("ReadStream(%q) = %d records, %v", id, len(h), err)
		}
		n := 0
		for r, err := range s.ReadAll(ctx, 0, eventsource.Filter{Streams: []string{id}}) {
			if err != nil || r.StreamID != id {
				t.Fatalf("ReadAll(stream %q): %q, %v", id, r.StreamID, err)
			}
			n++
		}
		if n != 1 {
			t.Fatalf("ReadAll(stream %q) matched %d", id, n)
		}
		n = 0
		for r, err := range s.ReadAll(ctx, 0, eventsource.Filter{Metadata: map[string]string{"id": id}}) {
			if err != nil || r.StreamID != id {
				t.Fatalf("ReadAll(metadata %q): %q, %v", id, r.StreamID, err)
			}
			n++
		}
		if n != 1 {
			t.Fatalf("ReadAll(metadata id=%q) matched %d", id, n)
		}
	}
	n := 0
	for _, err := range s.ListStreams(ctx, "a") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("ListStreams(a) listed %d, want 3", n)
	}
}

// TestKilledConnection: the append's connection is killed from another
// connection after its records are written, before COMMIT. The append fails,
// stores nothing, and the store goes on working.
func TestKilledConnection(t *testing.T) {
	s, _ := newStore(t)
	db := testDB(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, "kill-1", eventsource.NoStream, []eventsource.Record{{Type: "Before"}}); err != nil {
		t.Fatal(err)
	}
	var conn atomic.Int64
	mysql.OnTx(s, func(id int64) { conn.Store(id) })
	hooked := storekit.WithBeforeCommit(ctx, func(context.Context) {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL %d", conn.Load())); err != nil {
			t.Errorf("KILL: %v", err)
		}
	})
	_, err := s.Append(hooked, "kill-1", eventsource.Exact(1), []eventsource.Record{{Type: "Killed"}, {Type: "Killed"}})
	if err == nil {
		t.Fatal("Append on a killed connection succeeded")
	}
	t.Logf("Append on a killed connection: %v", err)
	mysql.OnTx(s, nil)
	h, err := eventsource.ReadStreamAll(ctx, s, "kill-1")
	if err != nil || len(h) != 1 {
		t.Fatalf("stream holds %d records (%v), want 1", len(h), err)
	}
	res, err := s.Append(ctx, "kill-1", eventsource.Exact(1), []eventsource.Record{{Type: "After"}})
	if err != nil || res.LastVersion != 2 {
		t.Fatalf("Append after the kill: %+v, %v", res, err)
	}
	n := 0
	for _, err := range s.ReadAll(ctx, 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("global log holds %d records, want 2", n)
	}
}

// TestHeldCommit: one append sleeps 300ms before its COMMIT while others
// try to land. A reader polling the global log must see the held one before
// any later position: the counter row makes the others wait.
func TestHeldCommit(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	held := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		hctx := storekit.WithBeforeCommit(ctx, func(context.Context) { close(held); time.Sleep(300 * time.Millisecond) })
		if _, err := s.Append(hctx, "held-1", eventsource.NoStream, []eventsource.Record{{Type: "Held", EventID: "held"}}); err != nil {
			t.Errorf("held append: %v", err)
		}
	}()
	<-held
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if _, err := s.Append(ctx, fmt.Sprintf("other-%d", w), eventsource.Any, []eventsource.Record{{Type: "Other"}}); err != nil {
					t.Errorf("other append: %v", err)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var last uint64
	seen := map[string]bool{}
	poll := func() {
		for r, err := range s.ReadAll(ctx, last+1, eventsource.Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			if r.EventID != "held" && !seen["held"] {
				t.Fatalf("read %s at position %d before the held append", r.Type, r.Position)
			}
			seen[r.EventID] = true
			last = r.Position
		}
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		case <-time.After(2 * time.Millisecond):
		}
		poll()
	}
	if len(seen) != 21 {
		t.Fatalf("reader saw %d events, want 21", len(seen))
	}
}

// TestLargeBatch crosses the statement size and placeholder limits of one
// INSERT, and the idempotency lookup's chunks.
func TestLargeBatch(t *testing.T) {
	s, _ := newStore(t, mysql.WithMaxDataSize(1<<20))
	ctx := context.Background()
	recs := make([]eventsource.Record, 9000)
	for i := range recs {
		recs[i] = eventsource.Record{Type: "Big", EventID: fmt.Sprintf("big-%d", i)}
		if i%1000 == 0 {
			recs[i].Data = make([]byte, 1<<20)
		}
	}
	res, err := s.Append(ctx, "big-1", eventsource.NoStream, recs)
	if err != nil || res.LastVersion != 9000 || res.LastPosition-res.FirstPosition != 8999 {
		t.Fatalf("Append: %+v, %v", res, err)
	}
	again, err := s.Append(ctx, "big-1", eventsource.NoStream, recs)
	if err != nil || again != res {
		t.Fatalf("retry: %+v, %v; want %+v", again, err, res)
	}
	n := 0
	for r, err := range s.ReadStream(ctx, "big-1", 1, 0) {
		if err != nil || r.Version != int64(n+1) {
			t.Fatalf("record %d: version %d, %v", n, r.Version, err)
		}
		n++
	}
	if n != 9000 {
		t.Fatalf("read %d records", n)
	}
}

// TestNotifyAcrossStores: an append through another Store (another process,
// as far as this one knows) reaches Notify through the head poll.
func TestNotifyAcrossStores(t *testing.T) {
	a, prefix := newStore(t, mysql.WithPollInterval(20*time.Millisecond))
	b := mysql.New(testDB(t), mysql.WithTablePrefix(prefix))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := a.Notify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "n-1", eventsource.NoStream, []eventsource.Record{{Type: "T"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal 5s after another store's append")
	}
	a.Close()
	select {
	case _, ok := <-ch:
		if ok {
			// A pending signal; the close follows.
			if _, ok := <-ch; ok {
				t.Fatal("channel open after Close")
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after Close")
	}
}

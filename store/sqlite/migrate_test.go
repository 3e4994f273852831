package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// TestUpgradeToLifecycle: a database written before migration 004 (the
// schema of migrations 001-003, with events, a snapshot and a stream the
// old DeleteStream emptied) upgrades in place on Open; its streams keep
// their versions and take metadata, soft deletes and a scavenge.
func TestUpgradeToLifecycle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", sqlite.DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE es_schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"001_initial.up.sql", "002_reservations.up.sql", "003_snapshots.up.sql"} {
		b, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(strings.ReplaceAll(string(b), "{{prefix}}", "es_")); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := db.Exec(`INSERT INTO es_schema_migrations VALUES (?, ?)`, i+1, time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixNano()
	for v := 1; v <= 3; v++ {
		if _, err := db.Exec(`INSERT INTO es_events (stream_id, version, event_id, type, codec, data, metadata, recorded_at) VALUES ('old-1', ?, ?, 'T', 'json', x'7b7d', NULL, ?)`,
			v, eventsource.NewEventID(), now); err != nil {
			t.Fatal(err)
		}
	}
	// The old DeleteStream removed a stream's rows: its name starts again.
	if _, err := db.Exec(`INSERT INTO es_events (stream_id, version, event_id, type, codec, data, metadata, recorded_at) VALUES ('gone', 1, ?, 'T', 'json', x'', NULL, ?)`, eventsource.NewEventID(), now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM es_events WHERE stream_id = 'gone'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO es_snapshots VALUES ('old-1', 3, 3, 1, x'7b7d', ?)`, now); err != nil {
		t.Fatal(err)
	}

	s, err := sqlite.New(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Verify(ctx); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("Verify before the upgrade = %v, want ErrInvalidConfig (call Migrate)", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("Verify after the upgrade: %v", err)
	}
	if h, err := s.Head(ctx); err != nil || h != 4 {
		t.Fatalf("Head after the upgrade = %d, %v; want 4 (positions are never reused)", h, err)
	}
	if md, v, err := s.StreamMetadata(ctx, "old-1"); err != nil || v != 0 || !md.IsZero() {
		t.Fatalf("StreamMetadata of an old stream = %+v, %d, %v", md, v, err)
	}
	if _, err := s.SetStreamMetadata(ctx, "old-1", eventsource.NoStream, eventsource.StreamMetadata{TruncateBefore: 2}); err != nil {
		t.Fatal(err)
	}
	if h, err := eventsource.ReadStreamAll(ctx, s, "old-1"); err != nil || len(h) != 2 || h[0].Version != 2 {
		t.Fatalf("truncated old stream reads %d records (%v)", len(h), err)
	}
	if err := s.DeleteStream(ctx, "old-1", eventsource.Exact(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadSnapshot(ctx, "old-1", 0); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("the old snapshot survived the delete: %v", err)
	}
	res, err := s.Scavenge(ctx, eventsource.ScavengeOptions{})
	if err != nil || res.Removed != 3 || res.Streams != 1 {
		t.Fatalf("Scavenge = %+v, %v; want old-1's 3 records removed", res, err)
	}
	if r, err := s.Append(ctx, "old-1", eventsource.NoStream, []eventsource.Record{{Type: "T"}}); err != nil || r.FirstVersion != 4 || r.FirstPosition != 5 {
		t.Fatalf("append to the deleted old stream = %+v, %v; want version 4 at position 5", r, err)
	}
	if r, err := s.Append(ctx, "gone", eventsource.NoStream, []eventsource.Record{{Type: "T"}}); err != nil || r.FirstVersion != 1 {
		t.Fatalf("append to a stream the old DeleteStream removed = %+v, %v", r, err)
	}
}

// TestLifecycleAcrossProcesses: rules written through one database handle
// hold at once for another on the same file (as for another process): its
// reads hide what they retire and its appends see the tombstone.
func TestLifecycleAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	a, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	recs := []eventsource.Record{{Type: "T"}, {Type: "T"}, {Type: "T"}}
	if _, err := b.Append(ctx, "x-1", eventsource.NoStream, recs); err != nil {
		t.Fatal(err)
	}
	count := func() (log, stream int) {
		for _, err := range b.ReadAll(ctx, 0, eventsource.Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			log++
		}
		for _, err := range b.ReadStream(ctx, "x-1", 1, 0) {
			if err == nil {
				stream++
			}
		}
		return log, stream
	}
	if l, s := count(); l != 3 || s != 3 {
		t.Fatalf("before any rule: %d in the log, %d in the stream", l, s)
	}
	if _, err := a.SetStreamMetadata(ctx, "x-1", eventsource.NoStream, eventsource.StreamMetadata{MaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	if l, s := count(); l != 1 || s != 1 {
		t.Fatalf("after MaxCount 1 set by the other handle: %d in the log, %d in the stream", l, s)
	}
	if err := a.TombstoneStream(ctx, "x-1", eventsource.Any); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "x-1", eventsource.Any, recs[:1]); !errors.Is(err, eventsource.ErrStreamDeleted) {
		t.Fatalf("append through the other handle after the tombstone: %v", err)
	}
	if l, _ := count(); l != 0 {
		t.Fatalf("after the tombstone: %d in the log", l)
	}
}

// TestInertRules: a rules row that can no longer hide a stored record
// (values only, or a cut whose records a scavenge removed) is inert, so
// ReadAll skips its per-record check; any rule that can still hide one
// makes it active again. The global log reads the same throughout.
func TestInertRules(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "inert.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	active := func() int {
		t.Helper()
		var n int
		q := `SELECT count(*) FROM es_stream_rules WHERE max_age > 0 OR since > 0 OR (cut > 1 AND cut > gone)`
		if err := s.DB().QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	logLen := func() int {
		t.Helper()
		n := 0
		for _, err := range s.ReadAll(ctx, 0, eventsource.Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}
	three := []eventsource.Record{{Type: "T"}, {Type: "T"}, {Type: "T"}}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Append(ctx, id, eventsource.NoStream, three); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SetStreamMetadata(ctx, "a", eventsource.NoStream, eventsource.StreamMetadata{Values: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if n := active(); n != 0 {
		t.Fatalf("values only: %d active rows, want 0", n)
	}
	if err := s.DeleteStream(ctx, "b", eventsource.Any); err != nil {
		t.Fatal(err)
	}
	if n, l := active(), logLen(); n != 1 || l != 6 {
		t.Fatalf("after a delete: %d active rows, %d records in the log; want 1, 6", n, l)
	}
	if _, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, l := active(), logLen(); n != 0 || l != 6 {
		t.Fatalf("after the scavenge: %d active rows, %d records in the log; want 0, 6", n, l)
	}
	// Written again, the deleted stream continues and reads whole.
	if _, err := s.Append(ctx, "b", eventsource.NoStream, three[:1]); err != nil {
		t.Fatal(err)
	}
	if n, l := active(), logLen(); n != 0 || l != 7 {
		t.Fatalf("after writing b again: %d active rows, %d records; want 0, 7", n, l)
	}
	if _, err := s.SetStreamMetadata(ctx, "c", eventsource.NoStream, eventsource.StreamMetadata{MaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	if n, l := active(), logLen(); n != 1 || l != 5 {
		t.Fatalf("with MaxCount 1 on c: %d active rows, %d records; want 1, 5", n, l)
	}
	// A cut past the end stays active after a scavenge: the appends that
	// follow land below it and must stay hidden in the log too.
	if _, err := s.SetStreamMetadata(ctx, "a", eventsource.Exact(1), eventsource.StreamMetadata{TruncateBefore: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "a", eventsource.NoStream, three); err != nil {
		t.Fatal(err)
	}
	if n, l := active(), logLen(); n != 1 || l != 2 {
		t.Fatalf("a truncated before 10 at version 3, scavenged, then written to 6: %d active rows, %d records; want 1 (a; c is scavenged), 2 (b's and c's newest)", n, l)
	}
	// An append to the MaxCount stream moves its cut: active again.
	if _, err := s.Append(ctx, "c", eventsource.Any, three[:1]); err != nil {
		t.Fatal(err)
	}
	if n, l := active(), logLen(); n != 2 || l != 2 {
		t.Fatalf("after an append to c: %d active rows, %d records; want 2, 2", n, l)
	}
	if got, err := eventsource.ReadStreamAll(ctx, s, "a"); err != nil || len(got) != 0 {
		t.Fatalf("ReadStream(a) = %d records, %v; want none below the cut", len(got), err)
	}
	var plan string
	rows, err := s.DB().QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT 1 FROM es_stream_rules WHERE max_age > 0 OR since > 0 OR (cut > 1 AND cut > gone)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan += detail + "; "
	}
	rows.Close()
	if !strings.Contains(plan, "stream_rules_active") {
		t.Fatalf("the active-rules check does not use the partial index: %s", plan)
	}
}

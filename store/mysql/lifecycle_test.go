package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/migrate"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/mysql"
)

// TestUpgradeToLifecycle: tables made by migrations 001-003, holding
// streams written before streams had rules, are upgraded in place by
// Migrate (migration 004 adds {prefix}stream_rules and streams.ruled), and
// the old streams keep their versions, can be deleted softly and continue
// their versions. Migration 004 runs again harmlessly, as it would after a
// crash between its ALTER and its record.
func TestUpgradeToLifecycle(t *testing.T) {
	ctx := context.Background()
	db := testDB(t)
	prefix := randomPrefix(t)
	t.Cleanup(func() { dropTables(db, prefix) })
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
	}
	exec("CREATE TABLE `" + prefix + "schema_migrations` (version INT UNSIGNED NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB")
	files, err := filepath.Glob("migrations/00[123]_*.up.sql")
	if err != nil || len(files) != 3 {
		t.Fatalf("migrations 001-003: %v, %v", files, err)
	}
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range migrate.Statements(strings.ReplaceAll(string(b), "{{prefix}}", prefix)) {
			exec(st)
		}
		exec("INSERT INTO `"+prefix+"schema_migrations` VALUES (?, ?, UTC_TIMESTAMP(6))", i+1, filepath.Base(f))
	}
	// Two streams as the store wrote them before migration 004.
	exec("INSERT INTO `" + prefix + "streams` (stream_id, version) VALUES ('old-1', 2), ('old-2', 1)")
	for i, r := range []struct {
		stream  string
		version int
	}{{"old-1", 1}, {"old-2", 1}, {"old-1", 2}} {
		exec("INSERT INTO `"+prefix+"events` (position, stream_id, version, event_id, type, codec, data, metadata, recorded_at) VALUES (?, ?, ?, ?, 'Old', 'json', '{}', NULL, UTC_TIMESTAMP(6))",
			i+1, r.stream, r.version, fmt.Sprintf("old-event-%d", i+1))
	}
	exec("UPDATE `" + prefix + "position` SET position = 3 WHERE id = 1")

	s := mysql.New(db, mysql.WithTablePrefix(prefix), mysql.WithoutAutoMigrate())
	if err := s.Verify(ctx); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("Verify before the upgrade: %v, want ErrInvalidConfig (call Migrate)", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("Verify after the upgrade: %v", err)
	}
	// Again, as after a crash before 004 was recorded.
	exec("DELETE FROM `" + prefix + "schema_migrations` WHERE version = 4")
	if err := mysql.New(db, mysql.WithTablePrefix(prefix)).Migrate(ctx); err != nil {
		t.Fatalf("Migrate running 004 a second time: %v", err)
	}

	if h, err := eventsource.ReadStreamAll(ctx, s, "old-1"); err != nil || len(h) != 2 {
		t.Fatalf("old-1 reads %d records, %v", len(h), err)
	}
	if res, err := s.Append(ctx, "old-1", eventsource.Exact(2), []eventsource.Record{{Type: "New"}}); err != nil || res.FirstVersion != 3 || res.FirstPosition != 4 {
		t.Fatalf("Append to old-1 after the upgrade: %+v, %v", res, err)
	}
	if err := s.DeleteStream(ctx, "old-2", eventsource.Exact(1)); err != nil {
		t.Fatalf("DeleteStream of old-2: %v", err)
	}
	var log []string
	for r, err := range s.ReadAll(ctx, 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, fmt.Sprintf("%s@%d", r.StreamID, r.Version))
	}
	if fmt.Sprint(log) != "[old-1@1 old-1@2 old-1@3]" {
		t.Fatalf("the global log after a soft delete of old-2: %v", log)
	}
	if res, err := s.Append(ctx, "old-2", eventsource.NoStream, []eventsource.Record{{Type: "New"}}); err != nil || res.FirstVersion != 2 {
		t.Fatalf("Append(NoStream) to the soft-deleted old-2: %+v, %v; want version 2", res, err)
	}
}

// TestLifecycleDSNSettings: the lifecycle's statements behave the same
// whatever the DSN says: with clientFoundRows an Any append to a ruled
// stream reports the rows it found, not the rows it changed, and with loc
// the driver would write times in another zone (the store writes the
// retention's Since as UTC text).
func TestLifecycleDSNSettings(t *testing.T) {
	for _, settings := range []string{"", "clientFoundRows=true&parseTime=true&interpolateParams=true&loc=Asia%2FTokyo"} {
		t.Run(settings, func(t *testing.T) {
			dsn := testenv.MySQL.URL(t)
			if settings != "" {
				sep := "?"
				if strings.Contains(dsn, "?") {
					sep = "&"
				}
				dsn += sep + settings
			}
			db, err := sql.Open("mysql", dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			db.SetMaxOpenConns(1) // one connection: LAST_INSERT_ID left by one statement is there for the next
			prefix := randomPrefix(t)
			t.Cleanup(func() { dropTables(testDB(t), prefix) })
			s := mysql.New(db, mysql.WithTablePrefix(prefix))
			ctx := context.Background()
			appendAny := func(stream string, want int64) {
				t.Helper()
				res, err := s.Append(ctx, stream, eventsource.Any, []eventsource.Record{{Type: "T"}})
				if err != nil || res.FirstVersion != want {
					t.Fatalf("Append(%q, Any) = %+v, %v; want version %d", stream, res, err, want)
				}
			}
			reads := func(stream string, want string) {
				t.Helper()
				var got []int64
				for r, err := range s.ReadStream(ctx, stream, 1, 0) {
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, r.Version)
				}
				var log []int64
				for r, err := range s.ReadAll(ctx, 0, eventsource.Filter{Streams: []string{stream}}) {
					if err != nil {
						t.Fatal(err)
					}
					log = append(log, r.Version)
				}
				if fmt.Sprint(got) != want || fmt.Sprint(log) != want {
					t.Fatalf("%q reads %v, its records in the log %v; want %s", stream, got, log, want)
				}
			}
			appendAny("a", 1) // inserted
			appendAny("a", 2) // updated
			if _, err := s.SetStreamMetadata(ctx, "a", eventsource.NoStream, eventsource.StreamMetadata{MaxCount: 2}); err != nil {
				t.Fatal(err)
			}
			appendAny("a", 3) // ruled: the rules move the cut
			appendAny("a", 4)
			reads("a", "[3 4]")
			appendAny("b", 1) // inserted, after the ruled upserts' LAST_INSERT_ID(1)
			reads("b", "[1]")
			// Lifting a MaxAge sets Since to what it retired: an hour ago,
			// so a record appended now is visible.
			if _, err := s.SetStreamMetadata(ctx, "c", eventsource.NoStream, eventsource.StreamMetadata{MaxAge: time.Hour}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SetStreamMetadata(ctx, "c", eventsource.Exact(1), eventsource.StreamMetadata{}); err != nil {
				t.Fatal(err)
			}
			appendAny("c", 1)
			reads("c", "[1]")
		})
	}
}

// TestAppendAfterScavengedTail: a scavenge that removes the newest records
// of the log leaves the counter ahead of the last row, so the next append's
// visibility check fails and it takes the precise path (see takePositions);
// it lands after the removed positions, and a reader sees the log without
// them.
func TestAppendAfterScavengedTail(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, "keep-1", eventsource.NoStream, []eventsource.Record{{Type: "T"}}); err != nil {
		t.Fatal(err)
	}
	tail, err := s.Append(ctx, "tail-1", eventsource.NoStream, []eventsource.Record{{Type: "T"}, {Type: "T"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.TombstoneStream(ctx, "tail-1", eventsource.Exact(2)); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil || res.Removed != 2 || res.Streams != 1 {
		t.Fatalf("Scavenge = %+v, %v; want the 2 records of tail-1 removed", res, err)
	}
	res, err := s.Append(ctx, "keep-1", eventsource.Exact(1), []eventsource.Record{{Type: "T"}})
	if err != nil || res.FirstPosition != tail.LastPosition+1 {
		t.Fatalf("Append after the scavenged tail = %+v, %v; want position %d", res, err, tail.LastPosition+1)
	}
	var log []string
	for r, err := range s.ReadAll(ctx, 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, fmt.Sprintf("%s@%d:%d", r.StreamID, r.Version, r.Position))
	}
	if want := fmt.Sprintf("[keep-1@1:1 keep-1@2:%d]", res.FirstPosition); fmt.Sprint(log) != want {
		t.Fatalf("the global log reads %v, want %s", log, want)
	}
}

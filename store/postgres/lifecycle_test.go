package postgres_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
)

// TestUpgradeInPlace: a database written by the store before migration 005
// (streams whose rows carry no metadata, events whose versions make the
// stream's version) migrates in place, and its streams then read, list,
// append and take the lifecycle as new ones do.
func TestUpgradeInPlace(t *testing.T) {
	ctx := ctxFor(t)
	schema := pgtest.Schema(t, "es_t_")
	p := pgtest.Pool(t)
	old := postgres.New(p, postgres.WithSchema(schema), postgres.WithoutAutoMigrate())
	defer old.Close()
	if err := postgres.MigrateTo(ctx, old, 4); err != nil {
		t.Fatal(err)
	}
	// What the old append wrote: the row of a new stream, and its events.
	err := pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
		for _, st := range []struct {
			id string
			n  int
		}{{"old-1", 3}, {"old-2", 2}} {
			if _, err := tx.Exec(ctx, `INSERT INTO `+schema+`.es_streams (stream_id) VALUES ($1)`, st.id); err != nil {
				return err
			}
			for v := 1; v <= st.n; v++ {
				if _, err := tx.Exec(ctx, `INSERT INTO `+schema+`.es_events (position, stream_id, version, event_id, type, codec, data)
					VALUES ((pg_current_xact_id()::text::bigint << 20) + 1 + (SELECT count(*) FROM `+schema+`.es_events), $1, $2, $3, 'Old', 'json', '{}')`,
					st.id, v, fmt.Sprintf("%s-%d", st.id, v)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Verify(ctx); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("Verify of a schema at migration 4 = %v, want ErrInvalidConfig", err)
	}

	s := postgres.New(p, postgres.WithSchema(schema))
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate from 4: %v", err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("Verify after the upgrade: %v", err)
	}
	if h, err := eventsource.ReadStreamAll(ctx, s, "old-1"); err != nil || len(h) != 3 {
		t.Fatalf("old-1 reads %d records, %v", len(h), err)
	}
	var listed []string
	for info, err := range s.ListStreams(ctx, "old-") {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, fmt.Sprintf("%s@%d", info.StreamID, info.Version))
	}
	if fmt.Sprint(listed) != "[old-1@3 old-2@2]" {
		t.Fatalf("ListStreams after the upgrade: %v", listed)
	}
	if md, v, err := s.StreamMetadata(ctx, "old-1"); err != nil || v != 0 || !md.IsZero() {
		t.Fatalf("metadata of an old stream = %+v at %d, %v", md, v, err)
	}
	if res := mustAppend(t, s, "old-1", eventsource.Exact(3), recs(1, "New")); res.FirstVersion != 4 {
		t.Fatalf("append to an old stream: %+v", res)
	}
	if err := s.DeleteStream(ctx, "old-2", eventsource.Exact(2)); err != nil {
		t.Fatal(err)
	}
	if res := mustAppend(t, s, "old-2", eventsource.NoStream, recs(1, "New")); res.FirstVersion != 3 {
		t.Fatalf("append to a soft-deleted old stream: %+v", res)
	}
	if all := readAll(t, s); len(all) != 5 || all[len(all)-1].StreamID != "old-2" || all[len(all)-1].Version != 3 {
		t.Fatalf("the global log after the upgrade holds %d records", len(all))
	}
}

// AppendTx refuses a tombstoned stream in either isolation level, and the
// refusal leaves the caller's transaction usable.
func TestAppendTxTombstoned(t *testing.T) {
	s, _ := newStore(t)
	p := pgtest.Pool(t)
	ctx := ctxFor(t)
	mustAppend(t, s, "tx-tomb", eventsource.NoStream, recs(2, "T"))
	if err := s.TombstoneStream(ctx, "tx-tomb", eventsource.Exact(2)); err != nil {
		t.Fatal(err)
	}
	for _, iso := range []pgx.TxIsoLevel{pgx.ReadCommitted, pgx.RepeatableRead} {
		err := pgx.BeginTxFunc(ctx, p, pgx.TxOptions{IsoLevel: iso}, func(tx pgx.Tx) error {
			var de *eventsource.StreamDeletedError
			if _, err := s.AppendTx(ctx, tx, "tx-tomb", eventsource.Any, recs(1, "T")); !errors.As(err, &de) || de.Stream != "tx-tomb" {
				t.Errorf("%s: AppendTx to a tombstoned stream: %v, want a *StreamDeletedError", iso, err)
			}
			_, err := s.AppendTx(ctx, tx, "tx-other", eventsource.Any, recs(1, "T"))
			return err
		})
		if err != nil {
			t.Fatalf("%s: the transaction after the refusal: %v", iso, err)
		}
	}
	if h, err := eventsource.ReadStreamAll(ctx, s, "tx-other"); err != nil || len(h) != 2 {
		t.Fatalf("tx-other holds %d records, %v", len(h), err)
	}
}

// A stream whose records all age out keeps its version through a scavenge
// that removes every one of them (its head is kept with its rules), and a
// stream with a MaxCount moves its cut in the append's own statement.
func TestScavengeAgedOut(t *testing.T) {
	t.Parallel()
	s, schema := newStore(t)
	ctx := ctxFor(t)
	first := mustAppend(t, s, "aged", eventsource.NoStream, recs(3, "A"))
	if _, err := s.SetStreamMetadata(ctx, "aged", eventsource.NoStream, eventsource.StreamMetadata{MaxAge: time.Second}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if h, err := eventsource.ReadStreamAll(ctx, s, "aged"); err != nil || len(h) != 0 {
		t.Fatalf("a stream aged out reads %d records, %v", len(h), err)
	}
	res, err := s.Scavenge(ctx, eventsource.ScavengeOptions{})
	if err != nil || res.Removed != 3 || res.Streams != 1 {
		t.Fatalf("Scavenge = %+v, %v; want 3 removed from 1 stream", res, err)
	}
	next := mustAppend(t, s, "aged", eventsource.Exact(3), recs(1, "A"))
	if next.FirstVersion != 4 || next.FirstPosition <= first.LastPosition {
		t.Fatalf("append after a scavenge of every record: %+v", next)
	}
	if h, err := eventsource.ReadStreamAll(ctx, s, "aged"); err != nil || len(h) != 1 || h[0].Version != 4 {
		t.Fatalf("the stream reads %v, %v; want version 4", storetestVersions(h), err)
	}

	if _, err := s.SetStreamMetadata(ctx, "counted", eventsource.NoStream, eventsource.StreamMetadata{MaxCount: 2}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		mustAppend(t, s, "counted", eventsource.Any, recs(2, "C"))
	}
	var cut int64
	if err := pgtest.Pool(t).QueryRow(ctx, `SELECT cut FROM `+schema+`.es_retention WHERE stream_id = 'counted'`).Scan(&cut); err != nil || cut != 5 {
		t.Fatalf("cut of a stream of 6 with MaxCount 2 = %d, %v; want 5", cut, err)
	}
}

// TestInertRules: a retention row that can no longer hide a stored record
// (values only, a scavenged delete, a scavenged tombstone) is inert, so the
// global log stops checking records against {retention}; a cut past the
// end, and a MaxCount cut an append moved, stay or turn active again.
func TestInertRules(t *testing.T) {
	t.Parallel()
	s, schema := newStore(t)
	ctx := ctxFor(t)
	active := func() int {
		t.Helper()
		var n int
		if err := pgtest.Pool(t).QueryRow(ctx, `SELECT count(*) FROM `+schema+`.es_retention WHERE max_age > 0 OR since IS NOT NULL OR (cut > 1 AND cut > gone)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	scavenge := func() {
		t.Helper()
		if _, err := s.Scavenge(ctx, eventsource.ScavengeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		mustAppend(t, s, id, eventsource.NoStream, recs(3, "I"))
	}
	if _, err := s.SetStreamMetadata(ctx, "a", eventsource.NoStream, eventsource.StreamMetadata{Values: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "b", eventsource.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.TombstoneStream(ctx, "d", eventsource.Any); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetStreamMetadata(ctx, "c", eventsource.NoStream, eventsource.StreamMetadata{TruncateBefore: 10}); err != nil {
		t.Fatal(err)
	}
	if n := active(); n != 3 {
		t.Fatalf("before the scavenge: %d active rows, want 3 (b, c, d)", n)
	}
	scavenge()
	if n := active(); n != 1 {
		t.Fatalf("after the scavenge: %d active rows, want 1 (c: its cut lies past its end)", n)
	}
	mustAppend(t, s, "b", eventsource.NoStream, recs(1, "I"))
	mustAppend(t, s, "c", eventsource.Exact(3), recs(1, "I"))
	if all := readAll(t, s); len(all) != 4 || all[3].StreamID != "b" || all[3].Version != 4 {
		t.Fatalf("the log holds %v; want a's three and b's version 4 (c's version 4 is below its cut)", storetestVersions(all))
	}
	if _, err := s.SetStreamMetadata(ctx, "a", eventsource.Exact(1), eventsource.StreamMetadata{MaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	scavenge()
	if n := active(); n != 1 {
		t.Fatalf("a scavenged with MaxCount 1: %d active rows, want 1 (c)", n)
	}
	mustAppend(t, s, "a", eventsource.Any, recs(1, "I"))
	if n, all := active(), readAll(t, s); n != 2 || len(all) != 2 {
		t.Fatalf("after an append to a: %d active rows, %d records in the log; want 2, 2 (a's newest, b's)", n, len(all))
	}
}

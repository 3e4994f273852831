package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
)

// The PostgreSQL store's append is one statement: there is no step of the
// store's own between writing the records and committing them, so the
// tests hold commits open inside the database, on the production path,
// with a trigger on the events table of the test's schema. Appends of
// slowType sleep 5-30ms per record after it is written (storetest's
// SlowType); appends of heldType wait for the schema's advisory lock, which
// a test holds for as long as it wants the commit held.
const (
	slowType = "storetest.Slow"
	heldType = "storetest.Held"
)

// holdingStore is newStore with the trigger installed; table is the events
// table's name in the schema (es_events unless the prefix changes).
func holdingStore(t testing.TB, table string, opts ...postgres.Option) (*postgres.Store, string) {
	t.Helper()
	s, schema := newStore(t, opts...)
	sch := pgx.Identifier{schema}.Sanitize()
	ddl := fmt.Sprintf(`
CREATE FUNCTION %[1]s.storetest_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.type = %[3]s THEN
		PERFORM pg_sleep(0.005 + random() * 0.025);
	ELSE
		PERFORM pg_advisory_xact_lock_shared(hashtext(TG_TABLE_SCHEMA));
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER storetest_hold AFTER INSERT ON %[1]s.%[2]s FOR EACH ROW
	WHEN (NEW.type IN (%[3]s, %[4]s)) EXECUTE FUNCTION %[1]s.storetest_hold();`,
		sch, pgx.Identifier{table}.Sanitize(), quote(slowType), quote(heldType))
	if _, err := pgtest.Pool(t).Exec(context.Background(), ddl); err != nil {
		t.Fatalf("install the hold trigger: %v", err)
	}
	return s, schema
}

func quote(s string) string { return "'" + s + "'" }

// hold keeps the commits of heldType appends in schema open until release;
// waiting returns the backend of an append held now, 0 if none.
type hold struct {
	t      testing.TB
	mu     sync.Mutex // a pgx.Conn serves one goroutine at a time: release may run on a timer's
	conn   *pgx.Conn
	schema string
}

func holdCommits(t testing.TB, schema string) *hold {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pgtest.Pool(t).Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	h := &hold{t: t, conn: conn, schema: schema}
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		conn.Close(context.Background())
	})
	if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_lock(hashtext($1))", schema); err != nil {
		t.Fatal(err)
	}
	return h
}

// held waits until an append of heldType waits on the lock, and returns
// its backend's process ID.
func (h *hold) held() int32 {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var pid int32
		err := pgtest.Pool(h.t).QueryRow(context.Background(), `SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			WHERE l.locktype = 'advisory' AND NOT l.granted AND strpos(a.query, $1) > 0 LIMIT 1`, `"`+h.schema+`".`).Scan(&pid)
		if err == nil {
			return pid
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatal("no append held after 10s")
	return 0
}

// release lets the held commits go.
func (h *hold) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.conn.Exec(context.Background(), "SELECT pg_advisory_unlock(hashtext($1))", h.schema); err != nil {
		h.t.Error(err)
	}
}

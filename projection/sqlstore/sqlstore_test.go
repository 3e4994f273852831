package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlstore"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// tally is a read model: one row per event (the primary key makes a second
// application of an event fail loudly) and a running count per stream.
type tally struct {
	prefix string
	mysql  bool
	fail   func(r eventsource.Record) error // injected handler failure
}

func (m *tally) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	// Both tables: MySQL commits DDL at once, so a killed Init can leave one.
	var n int
	q := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)`
	if m.mysql {
		q = `SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN (?, ?)`
	}
	err := tx.QueryRowContext(ctx, q, m.prefix+"seen", m.prefix+"counts").Scan(&n)
	return n == 2, err
}

func (m *tally) Init(ctx context.Context, tx *sql.Tx) error {
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS ` + m.prefix + `seen (position BIGINT PRIMARY KEY)`,
		`CREATE TABLE IF NOT EXISTS ` + m.prefix + `counts (stream VARCHAR(255) PRIMARY KEY, n BIGINT NOT NULL)`,
	} {
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return err
		}
	}
	return nil
}

func (m *tally) Apply(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	upsert := `INSERT INTO ` + m.prefix + `counts (stream, n) VALUES (?, 1) ON CONFLICT (stream) DO UPDATE SET n = n + 1`
	if m.mysql {
		upsert = `INSERT INTO ` + m.prefix + `counts (stream, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1`
	}
	for _, r := range recs {
		if m.fail != nil {
			if err := m.fail(r); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+m.prefix+`seen (position) VALUES (?)`, int64(r.Position)); err != nil {
			return fmt.Errorf("position %d applied twice? %w", r.Position, err)
		}
		if _, err := tx.ExecContext(ctx, upsert, r.StreamID); err != nil {
			return err
		}
	}
	return nil
}

func (m *tally) Reset(ctx context.Context, tx *sql.Tx) error {
	for _, t := range []string{"seen", "counts"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+m.prefix+t); err != nil {
			return err
		}
	}
	return nil
}

func (m *tally) Delete(ctx context.Context, tx *sql.Tx) error {
	for _, t := range []string{"seen", "counts"} {
		if _, err := tx.ExecContext(ctx, `DROP TABLE `+m.prefix+t); err != nil {
			return err
		}
	}
	return nil
}

func (m *tally) total(t *testing.T, db *sql.DB) (seen, counted int) {
	t.Helper()
	if err := db.QueryRow(`SELECT count(*) FROM ` + m.prefix + `seen`).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT coalesce(sum(n), 0) FROM ` + m.prefix + `counts`).Scan(&counted); err != nil {
		t.Fatal(err)
	}
	return seen, counted
}

type env struct {
	events eventsource.Store
	db     *sql.DB
	cps    *sqlstore.Store
	rm     *tally
}

func sqliteEnv(t *testing.T) env {
	t.Helper()
	events, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	cps, err := sqlstore.New(events.DB(), sqlstore.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	return env{events: events, db: events.DB(), cps: cps, rm: &tally{prefix: "rm_"}}
}

func mysqlEnv(t *testing.T) env {
	t.Helper()
	db, err := sql.Open("mysql", testenv.MySQL.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	prefix := fmt.Sprintf("t%d_", rand.Uint32())
	cps, err := sqlstore.New(db, sqlstore.MySQL, sqlstore.WithTablePrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	rm := &tally{prefix: prefix + "rm_", mysql: true}
	t.Cleanup(func() {
		for _, tbl := range []string{"projections", "rm_seen", "rm_counts"} {
			db.Exec(`DROP TABLE IF EXISTS ` + prefix + tbl)
		}
	})
	// The events live in SQLite here: the read model's exactly-once promise
	// depends on the read model and checkpoint sharing a database, not on
	// where the events are.
	events, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	return env{events: events, db: db, cps: cps, rm: rm}
}

func forEachDialect(t *testing.T, f func(t *testing.T, e env)) {
	t.Run("sqlite", func(t *testing.T) { f(t, sqliteEnv(t)) })
	t.Run("mysql", func(t *testing.T) { f(t, mysqlEnv(t)) })
}

func appendTicks(t testing.TB, s eventsource.Store, n int) {
	for i := 0; i < n; i++ {
		if _, err := s.Append(context.Background(), fmt.Sprint("s-", i%7), eventsource.Any, []eventsource.Record{{Type: "Tick"}}); err != nil {
			t.Error(err)
			return
		}
	}
}

// TestExactlyOnceAcrossKills kills the projector (cancels its context) at
// random moments while writers append; the read model must end with each
// event applied exactly once.
func TestExactlyOnceAcrossKills(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e env) {
		const total = 400
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); appendTicks(t, e.events, total) }()
		rng := rand.New(rand.NewPCG(1, 2))
		for round := 0; ; round++ {
			p := projection.NewProjector("tally", e.events, e.cps, e.rm, projection.WithBatchSize(1+rng.IntN(20)))
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(2+rng.IntN(30))*time.Millisecond)
			err := p.Run(ctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("round %d: %v", round, err)
			}
			cp, err := e.cps.Load(context.Background(), "tally")
			if err != nil {
				t.Fatal(err)
			}
			if cp.Position == total {
				break
			}
			if round > 3000 {
				t.Fatalf("no progress after %d rounds: checkpoint %d", round, cp.Position)
			}
		}
		wg.Wait()
		seen, counted := e.rm.total(t, e.db)
		if seen != total || counted != total {
			t.Fatalf("read model saw %d events and counted %d, want exactly %d", seen, counted, total)
		}
	})
}

func TestResetRebuildsAndDeleteRemoves(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e env) {
		appendTicks(t, e.events, 50)
		p := projection.NewProjector("tally", e.events, e.cps, e.rm, projection.WithPollInterval(10*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		waitFor(t, func() bool { return p.Checkpoint().Position == 50 })
		if err := p.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			cp, _ := e.cps.Load(ctx, "tally")
			return cp.Request == projection.RequestNone && cp.Position == 50
		})
		if seen, counted := e.rm.total(t, e.db); seen != 50 || counted != 50 {
			t.Fatalf("after reset: %d seen, %d counted", seen, counted)
		}
		if err := p.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, projection.ErrDeleted) {
			t.Fatalf("Run after Delete = %v", err)
		}
		if cp, _ := e.cps.Load(ctx, "tally"); cp.Status != projection.StatusNew || cp.Position != 0 {
			t.Fatalf("checkpoint after delete: %+v", cp)
		}
		var n int
		if err := e.db.QueryRow(`SELECT count(*) FROM ` + e.rm.prefix + `seen`).Scan(&n); err == nil {
			t.Fatal("read model table still exists after Delete")
		}
	})
}

func TestLeaseFencing(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e env) {
		ctx := context.Background()
		if err := e.cps.Acquire(ctx, "p", "a", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := e.cps.Acquire(ctx, "p", "b", time.Hour); !errors.Is(err, projection.ErrLeaseHeld) {
			t.Fatalf("second owner: %v, want ErrLeaseHeld", err)
		}
		if _, err := e.cps.Save(ctx, "b", projection.Checkpoint{Name: "p", Position: 9}, projection.RequestNone); !errors.Is(err, projection.ErrLeaseLost) {
			t.Fatalf("save by a non-holder: %v, want ErrLeaseLost", err)
		}
		if err := e.cps.Request(ctx, "p", projection.RequestStop); err != nil {
			t.Fatal(err)
		}
		req, err := e.cps.Save(ctx, "a", projection.Checkpoint{Name: "p", Position: 9, Skipped: []uint64{3, 5}}, projection.RequestNone)
		if err != nil || req != projection.RequestStop {
			t.Fatalf("save by the holder: %v, %v", req, err)
		}
		if req, _ = e.cps.Save(ctx, "a", projection.Checkpoint{Name: "p", Position: 9}, projection.RequestStop); req != projection.RequestNone {
			t.Fatalf("handled request still pending: %v", req)
		}
		// An expired lease is taken over.
		if err := e.cps.Acquire(ctx, "q", "a", -time.Second); err != nil {
			t.Fatal(err)
		}
		if err := e.cps.Acquire(ctx, "q", "b", time.Hour); err != nil {
			t.Fatalf("taking over an expired lease: %v", err)
		}
		cp, err := e.cps.Load(ctx, "q")
		if err != nil || cp.Owner != "b" {
			t.Fatalf("owner after takeover: %+v %v", cp, err)
		}
		if err := e.cps.Release(ctx, "q", "b"); err != nil {
			t.Fatal(err)
		}
		if cp, _ := e.cps.Load(ctx, "q"); cp.Owner != "" {
			t.Fatalf("owner after release: %q", cp.Owner)
		}
		if _, err := sqlstore.New(e.db, sqlstore.SQLite, sqlstore.WithTablePrefix("bad prefix;")); !errors.Is(err, eventsource.ErrInvalidConfig) {
			t.Fatalf("bad prefix: %v", err)
		}
	})
}

func TestFaultRecordsPosition(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e env) {
		appendTicks(t, e.events, 20)
		e.rm.fail = func(r eventsource.Record) error {
			if r.Position == 13 {
				return errors.New("bad event")
			}
			return nil
		}
		p := projection.NewProjector("tally", e.events, e.cps, e.rm, projection.WithBatchSize(5))
		err := p.Run(context.Background())
		var fe *projection.FaultError
		if !errors.As(err, &fe) || fe.Position != 13 {
			t.Fatalf("Run = %v, want a fault at 13", err)
		}
		cp, _ := e.cps.Load(context.Background(), "tally")
		if cp.Status != projection.StatusFaulted || cp.Position != 12 || !strings.Contains(cp.Error, "bad event") {
			t.Fatalf("checkpoint: %+v", cp)
		}
		if seen, _ := e.rm.total(t, e.db); seen != 12 {
			t.Fatalf("read model holds %d events, want the 12 before the fault", seen)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/pgstore"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

var (
	poolOnce sync.Once
	pool     *pgxpool.Pool
	poolErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pool != nil {
		pool.Close()
	}
	os.Exit(code)
}

// testPool returns the pool the package's tests share, skipping (or failing
// under CI=true) when the server is unreachable.
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := testenv.Postgres.URL(t)
	poolOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			poolErr = err
			return
		}
		cfg.MaxConns = 16
		pool, poolErr = pgxpool.NewWithConfig(context.Background(), cfg)
	})
	if poolErr != nil {
		t.Fatalf("pool for %s: %v", url, poolErr)
	}
	return pool
}

// newSchema creates a schema for one test and drops it when the test ends.
func newSchema(t testing.TB) string {
	t.Helper()
	p := testPool(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "es_p_" + hex.EncodeToString(b)
	if _, err := p.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := p.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// tally is a read model: one row per event (the primary key makes a second
// application of an event fail loudly) and a running count per stream.
type tally struct {
	schema string
	fail   func(r eventsource.Record) error // injected handler failure
}

func (m *tally) table(name string) string { return pgx.Identifier{m.schema, "rm_" + name}.Sanitize() }

func (m *tally) IsInitialized(ctx context.Context, tx pgx.Tx) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL`,
		m.table("seen"), m.table("counts")).Scan(&ok)
	return ok, err
}

func (m *tally) Init(ctx context.Context, tx pgx.Tx) error {
	for _, ddl := range []string{
		`CREATE TABLE ` + m.table("seen") + ` (position bigint PRIMARY KEY)`,
		`CREATE TABLE ` + m.table("counts") + ` (stream text PRIMARY KEY, n bigint NOT NULL)`,
	} {
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return err
		}
	}
	return nil
}

func (m *tally) Apply(ctx context.Context, tx pgx.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if m.fail != nil {
			if err := m.fail(r); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+m.table("seen")+` (position) VALUES ($1)`, int64(r.Position)); err != nil {
			return fmt.Errorf("position %d applied twice? %w", r.Position, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+m.table("counts")+` AS c (stream, n) VALUES ($1, 1)
			ON CONFLICT (stream) DO UPDATE SET n = c.n + 1`, r.StreamID); err != nil {
			return err
		}
	}
	return nil
}

func (m *tally) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE `+m.table("seen")+`, `+m.table("counts"))
	return err
}

func (m *tally) Delete(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `DROP TABLE `+m.table("seen")+`, `+m.table("counts"))
	return err
}

func (m *tally) total(t *testing.T, p *pgxpool.Pool) (seen, counted int) {
	t.Helper()
	ctx := context.Background()
	if err := p.QueryRow(ctx, `SELECT count(*) FROM `+m.table("seen")).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if err := p.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM `+m.table("counts")).Scan(&counted); err != nil {
		t.Fatal(err)
	}
	return seen, counted
}

type env struct {
	events eventsource.Store
	pool   *pgxpool.Pool
	cps    *pgstore.Store
	rm     *tally
}

// newEnv gives a test its own schema for the checkpoints and the read model.
// The events live in SQLite: the read model's exactly-once promise depends
// on the read model and checkpoint sharing a database, not on where the
// events are.
func newEnv(t *testing.T) env {
	t.Helper()
	p := testPool(t)
	schema := newSchema(t)
	cps, err := pgstore.New(p, pgstore.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	events, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	return env{events: events, pool: p, cps: cps, rm: &tally{schema: schema}}
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
	t.Parallel()
	e := newEnv(t)
	const total = 300
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); appendTicks(t, e.events, total) }()
	rng := mrand.New(mrand.NewPCG(1, 2))
	rounds := 0
	for ; ; rounds++ {
		p := projection.NewProjector("tally", e.events, e.cps, e.rm, projection.WithBatchSize(1+rng.IntN(20)))
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(2+rng.IntN(30))*time.Millisecond)
		err := p.Run(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("round %d: %v", rounds, err)
		}
		cp, err := e.cps.Load(context.Background(), "tally")
		if err != nil {
			t.Fatal(err)
		}
		if cp.Position == total {
			break
		}
		if rounds > 3000 {
			t.Fatalf("no progress after %d rounds: checkpoint %d", rounds, cp.Position)
		}
	}
	wg.Wait()
	seen, counted := e.rm.total(t, e.pool)
	if seen != total || counted != total {
		t.Fatalf("read model saw %d events and counted %d, want exactly %d", seen, counted, total)
	}
	t.Logf("%d events in %d killed rounds", total, rounds+1)
}

func TestResetRebuildsAndDeleteRemoves(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
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
	if seen, counted := e.rm.total(t, e.pool); seen != 50 || counted != 50 {
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
	var exists bool
	if err := e.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, e.rm.table("seen")).Scan(&exists); err != nil || exists {
		t.Fatalf("read model table still exists after Delete (%v)", err)
	}
}

func TestLeaseFencing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
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
	if cp, err := e.cps.Load(ctx, "p"); err != nil || cp.Position != 9 || fmt.Sprint(cp.Skipped) != "[3 5]" || cp.Owner != "a" || cp.UpdatedAt.IsZero() {
		t.Fatalf("checkpoint after save: %+v %v", cp, err)
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
	if cp, _ := e.cps.Load(ctx, "q"); cp.Owner != "" || !cp.LeaseUntil.IsZero() {
		t.Fatalf("lease after release: %q until %v", cp.Owner, cp.LeaseUntil)
	}
	// An instance whose lease was taken over cannot commit a batch.
	if err := e.cps.Acquire(ctx, "r", "a", -time.Second); err != nil {
		t.Fatal(err)
	}
	if err := e.cps.Acquire(ctx, "r", "b", time.Hour); err != nil {
		t.Fatal(err)
	}
	err = e.cps.InTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := e.cps.SaveTx(ctx, tx, "a", projection.Checkpoint{Name: "r", Position: 1}, projection.RequestNone)
		return err
	})
	if !errors.Is(err, projection.ErrLeaseLost) {
		t.Fatalf("stale holder's SaveTx: %v, want ErrLeaseLost", err)
	}
	for _, bad := range []pgstore.Option{pgstore.WithTablePrefix("bad prefix;"), pgstore.WithSchema("1x"), pgstore.WithSchema(`a"b`)} {
		if _, err := pgstore.New(e.pool, bad); !errors.Is(err, eventsource.ErrInvalidConfig) {
			t.Fatalf("bad option: %v", err)
		}
	}
	if _, err := pgstore.New(nil); !errors.Is(err, eventsource.ErrInvalidConfig) {
		t.Fatalf("nil pool: %v", err)
	}
}

func TestFaultRecordsPosition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
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
	if cp.Status != projection.StatusFaulted || cp.Position != 12 || cp.FaultedAt != 13 || !strings.Contains(cp.Error, "bad event") {
		t.Fatalf("checkpoint: %+v", cp)
	}
	if seen, _ := e.rm.total(t, e.pool); seen != 12 {
		t.Fatalf("read model holds %d events, want the 12 before the fault", seen)
	}
}

// TestConcurrentCreate starts many stores on one fresh schema at once (as
// processes starting together would): creating the table must not fail.
func TestConcurrentCreate(t *testing.T) {
	t.Parallel()
	p := testPool(t)
	schema := newSchema(t) + "_x" // missing: created on first use too
	t.Cleanup(func() { _, _ = p.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgstore.New(p, pgstore.WithSchema(schema), pgstore.WithTablePrefix("c_"))
			if err == nil {
				err = s.SetStatus(context.Background(), fmt.Sprint("p", i), projection.StatusStopped)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := p.QueryRow(context.Background(), `SELECT count(*) FROM `+schema+`.c_projections WHERE status = 'stopped'`).Scan(&n); err != nil || n != 8 {
		t.Fatalf("rows: %d, %v", n, err)
	}
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

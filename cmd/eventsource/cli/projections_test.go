package cli_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/pgcheckpoint"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// tally is a read model of the positions applied; Apply fails at the
// position fail holds.
type tally[Tx any] interface {
	projection.ReadModel[Tx]
	failAt(pos uint64)
	applied(ctx context.Context) ([]uint64, error)
}

type poison struct{ pos atomic.Uint64 }

func (p *poison) failAt(pos uint64) { p.pos.Store(pos) }

func (p *poison) check(r eventsource.Record) error {
	if r.Position == p.pos.Load() {
		return fmt.Errorf("cannot apply %s at %d", r.Type, r.Position)
	}
	return nil
}

// sqlTally is a tally in SQLite.
type sqlTally struct {
	poison
	db *sql.DB
}

func (m *sqlTally) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'tally'`).Scan(&n)
	return n > 0, err
}

func (m *sqlTally) Init(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE tally (position INTEGER PRIMARY KEY)`)
	return err
}

func (m *sqlTally) Apply(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if err := m.check(r); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tally (position) VALUES (?)`, int64(r.Position)); err != nil {
			return err
		}
	}
	return nil
}

func (m *sqlTally) Reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM tally`)
	return err
}

func (m *sqlTally) Delete(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DROP TABLE tally`)
	return err
}

func (m *sqlTally) applied(ctx context.Context) ([]uint64, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT position FROM tally ORDER BY position`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, uint64(p))
	}
	return out, rows.Err()
}

// pgTally is a tally in a PostgreSQL schema.
type pgTally struct {
	poison
	conn interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	}
	table string // quoted, schema-qualified
}

func (m *pgTally) IsInitialized(ctx context.Context, tx pgx.Tx) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, m.table).Scan(&ok)
	return ok, err
}

func (m *pgTally) Init(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `CREATE TABLE `+m.table+` (position bigint PRIMARY KEY)`)
	return err
}

func (m *pgTally) Apply(ctx context.Context, tx pgx.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if err := m.check(r); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+m.table+` (position) VALUES ($1)`, int64(r.Position)); err != nil {
			return err
		}
	}
	return nil
}

func (m *pgTally) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `DELETE FROM `+m.table)
	return err
}

func (m *pgTally) Delete(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `DROP TABLE `+m.table)
	return err
}

func (m *pgTally) applied(ctx context.Context) ([]uint64, error) {
	rows, err := m.conn.Query(ctx, `SELECT position FROM `+m.table+` ORDER BY position`)
	if err != nil {
		return nil, err
	}
	ps, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	out := make([]uint64, len(ps))
	for i, p := range ps {
		out[i] = uint64(p)
	}
	return out, err
}

// projEnv is what the projections scenario runs over: an event store the
// tool opens by URL, the projector's checkpoints in its database, and a
// read model there.
type projEnv[Tx any] struct {
	store  string   // --store
	flags  []string // the projections group's flags (--schema)
	events eventsource.Store
	cps    projection.TxCheckpointStore[Tx]
	rm     tally[Tx]
}

func TestProjectionsSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, path := sqliteURL(t)
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cps, err := sqlcheckpoint.New(s.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	projectionsScenario(t, projEnv[*sql.Tx]{store: store, events: s, cps: cps, rm: &sqlTally{db: s.DB()}})
}

func TestProjectionsPostgres(t *testing.T) {
	t.Parallel()
	pg := testenv.Postgres.URL(t)
	ctx := context.Background()
	schema := testenv.Name("cli_proj_")
	t.Cleanup(func() { dropPostgresSchema(pg, schema) })
	s, err := postgres.Open(ctx, pg, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cps, err := pgcheckpoint.New(s.Pool(), pgcheckpoint.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	rm := &pgTally{conn: s.Pool(), table: pgx.Identifier{schema, "tally"}.Sanitize()}
	projectionsScenario(t, projEnv[pgx.Tx]{store: pg + "&schema=" + schema, flags: []string{"--schema", schema}, events: s, cps: cps, rm: rm})
}

// projectionsScenario: a projector parks an event; an operator lists,
// inspects, replays and discards parked events, verifies the delivery
// (clean, then with a planted fault), and stops, starts and resets the
// projector, all through the tool.
func projectionsScenario[Tx any](t *testing.T, e projEnv[Tx]) {
	ctx := context.Background()
	proj := func(args ...string) result {
		t.Helper()
		return tool(t, ctx, "", append(append([]string{"-s", e.store, "projections"}, e.flags...), args...)...)
	}
	ok := func(args ...string) result {
		t.Helper()
		r := proj(args...)
		if r.code != 0 {
			t.Fatalf("projections %v: exit code %d, stderr %q", args, r.code, r.stderr)
		}
		return r
	}
	fails := func(code int, args []string, says ...string) {
		t.Helper()
		wantFail(t, args, proj(args...), code, says...)
	}
	appendOne := func(stream, typ string) uint64 {
		t.Helper()
		res, err := e.events.Append(ctx, stream, eventsource.Any, []eventsource.Record{{Type: typ, Codec: "json", Data: []byte(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
		return res.LastPosition
	}
	load := func() projection.Checkpoint {
		t.Helper()
		cp, err := e.cps.Load(ctx, "tally")
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	waitFor := func(what string, cond func(projection.Checkpoint) bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			cp := load()
			if cond(cp) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited in vain for %s; checkpoint %+v", what, cp)
			}
		}
	}

	// Before any projector ran, there are no checkpoints.
	fails(3, []string{"status", "tally"}, "does not exist")

	appendOne("acct-1", "Opened")
	appendOne("acct-1", "Deposited")
	bad := appendOne("acct-2", "Poison")
	head := appendOne("acct-3", "Opened")
	e.rm.failAt(bad)
	p := projection.NewProjector("tally", e.events, e.cps, e.rm, projection.WithOwner("cli-test"),
		projection.WithErrorPolicy(projection.ErrorPolicy{Park: true}), projection.WithPolling(5*time.Millisecond, 50*time.Millisecond))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	waitFor("the poison parked and the rest applied", func(cp projection.Checkpoint) bool {
		return cp.Position == head && len(cp.Parked) == 1 && cp.Holder != ""
	})

	// list, status, parked.
	_, lists := e.cps.(projection.CheckpointLister)
	if !lists {
		fails(1, []string{"list"}, "cannot list")
	} else {
		r := ok("list")
		var row []string
		for _, l := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "tally" {
				row = f
			}
		}
		// NAME STATUS POSITION HOLDER PARKED
		if len(row) < 5 || row[1] != "running" || row[2] != fmt.Sprint(head) || row[3] != "cli-test" || row[4] != "1" || !strings.Contains(r.stderr, "1 projection") {
			t.Fatalf("list: row %q of %q", row, r.stdout)
		}
		var j struct {
			Name         string
			Status       string
			Parked       int
			OldestParked time.Time `json:"oldest_parked_at"`
			Holder       string
		}
		if err := json.Unmarshal([]byte(ok("list", "--json").stdout), &j); err != nil || j.Name != "tally" || j.Parked != 1 || j.Holder != "cli-test" ||
			time.Since(j.OldestParked) > time.Minute {
			t.Fatalf("list --json: %+v, %v", j, err)
		}
	}
	r := ok("status", "tally")
	for _, s := range []string{"status:", "running", fmt.Sprintf("position:        %d", head), "low-water mark:", "holder:", "cli-test (lease until",
		fmt.Sprintf("parked:          1 (position %d)", bad), "oldest parked:   ", "request:         none", "digests:         from position 1", "live version:    1"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("status does not say %q:\n%s", s, r.stdout)
		}
	}
	r = ok("parked", "tally")
	if !strings.Contains(r.stdout, fmt.Sprintf("%d  ", bad)) || !strings.Contains(r.stdout, "acct-2") || !strings.Contains(r.stdout, "Poison") ||
		!strings.Contains(r.stdout, fmt.Sprintf("cannot apply Poison at %d", bad)) || !strings.Contains(r.stderr, "1 parked event") {
		t.Fatalf("parked: %+v", r)
	}
	var pj struct {
		Position uint64
		Stream   string
		Error    string
	}
	if err := json.Unmarshal([]byte(ok("parked", "tally", "--json").stdout), &pj); err != nil || pj.Position != bad || pj.Stream != "acct-2" || pj.Error == "" {
		t.Fatalf("parked --json: %+v, %v", pj, err)
	}

	// Fixed, the poison is replayed by the projector running here.
	e.rm.failAt(0)
	fails(2, []string{"replay", "tally", fmt.Sprint(head + 100)}, "not parked")
	fails(2, []string{"replay", "tally", "x"}, "position")
	r = ok("replay", "tally", fmt.Sprint(bad))
	if !strings.Contains(r.stdout, fmt.Sprintf("replay 1 parked event (position %d)", bad)) || !strings.Contains(r.stdout, "cli-test") {
		t.Fatalf("replay: %+v", r)
	}
	waitFor("the replay", func(cp projection.Checkpoint) bool {
		return len(cp.Parked) == 0 && cp.Request == projection.RequestNone
	})
	if got, err := e.rm.applied(ctx); err != nil || !slices.Contains(got, bad) || len(got) != 4 {
		t.Fatalf("applied after the replay: %v, %v", got, err)
	}
	fails(2, []string{"replay", "tally"}, "no parked events")

	// Another poison, discarded.
	bad2 := appendOne("acct-4", "Poison")
	e.rm.failAt(bad2)
	waitFor("the second poison parked", func(cp projection.Checkpoint) bool { return len(cp.Parked) == 1 && cp.Position == bad2 })
	fails(2, []string{"discard", "tally", fmt.Sprint(bad)}, "not parked")
	fails(2, []string{"discard", "tally"}, "requires at least 2 arg")
	r = ok("discard", "tally", fmt.Sprint(bad2))
	if !strings.Contains(r.stdout, fmt.Sprintf("discarded 1 parked event (position %d) of tally: recorded as skipped", bad2)) {
		t.Fatalf("discard: %+v", r)
	}
	if cp := load(); len(cp.Parked) != 0 || !slices.Contains(cp.Skipped, bad2) {
		t.Fatalf("after discard: parked %v, skipped %v", cp.Parked, cp.Skipped)
	}
	if got, _ := e.rm.applied(ctx); slices.Contains(got, bad2) {
		t.Fatalf("a discarded event was applied: %v", got)
	}

	// Verify: clean.
	r = ok("verify", "tally")
	if !strings.Contains(r.stdout, fmt.Sprintf("checked positions 1–%d: ", bad2)) || !strings.Contains(r.stdout, " range") ||
		!strings.Contains(r.stdout, ", 5 events") || !strings.Contains(r.stdout, "no mismatch") {
		t.Fatalf("verify: %+v", r)
	}

	// Stop: the projector running here stops.
	r = ok("stop", "tally")
	if !strings.Contains(r.stdout, "asked tally to stop; cli-test") {
		t.Fatalf("stop: %+v", r)
	}
	select {
	case err := <-done:
		if !errors.Is(err, projection.ErrStopped) {
			t.Fatalf("Run after stop = %v, want ErrStopped", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the projector did not stop")
	}
	if cp := load(); cp.Status != projection.StatusStopped || cp.Request != projection.RequestNone {
		t.Fatalf("after stop: status %q, request %q", cp.Status, cp.Request)
	}
	if r := ok("stop", "tally"); !strings.Contains(r.stdout, "already stopped") {
		t.Fatalf("second stop: %+v", r)
	}

	// A planted delivery fault: one event counted twice in the digest of
	// the first range (positions 1–10,000, less on a log with gaps).
	var planted projection.Digest
	err := e.cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		cp, err := e.cps.LoadTx(ctx, tx, "tally")
		if err != nil {
			return err
		}
		cp.Digests[0].Count++
		planted = cp.Digests[0]
		return e.cps.WriteTx(ctx, tx, cp)
	})
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"verify", "tally"}
	r = proj(args...)
	wantFail(t, args, r, 6, "does not match the log")
	if !strings.Contains(r.stdout, fmt.Sprintf("positions %d–%d: 1 events handled more than once", planted.From, min(planted.To, bad2))) {
		t.Fatalf("verify of a planted fault: %+v", r)
	}
	r = proj("verify", "tally", "--json")
	var vj struct {
		OK         bool
		Ranges     int
		Mismatches []struct{ From, To uint64 }
	}
	if err := json.Unmarshal([]byte(r.stdout), &vj); err != nil || r.code != 6 || vj.OK || len(vj.Mismatches) != 1 || vj.Mismatches[0].From != planted.From {
		t.Fatalf("verify --json: %d %+v (%v) from %q", r.code, vj, err, r.stdout)
	}

	// Start, reset, skip, live.
	if r := ok("start", "tally"); !strings.Contains(r.stdout, "started tally (was stopped)") {
		t.Fatalf("start: %+v", r)
	}
	if cp := load(); cp.Status != projection.StatusRunning {
		t.Fatalf("after start: status %q", cp.Status)
	}
	if r := ok("start", "tally"); !strings.Contains(r.stdout, "already running") {
		t.Fatalf("second start: %+v", r)
	}
	if r := ok("reset", "tally"); !strings.Contains(r.stdout, "rebuild its read model from position 0; no instance runs it now") {
		t.Fatalf("reset: %+v", r)
	}
	if cp := load(); cp.Request != projection.RequestReset {
		t.Fatalf("after reset: request %q", cp.Request)
	}
	fails(2, []string{"skip", "tally"}, "has not faulted")
	if r := ok("status", "tally", "--json"); !strings.Contains(r.stdout, `"request":"reset"`) || !strings.Contains(r.stdout, `"live_version":1`) {
		t.Fatalf("status --json: %+v", r)
	}
	if r := ok("live", "tally"); r.stdout != "1\n" {
		t.Fatalf("live: %+v", r)
	}
	fails(3, []string{"status", "nobody"}, `no projection "nobody"`)
	fails(3, []string{"stop", "nobody"}, `no projection "nobody"`)
	if cp, _ := e.cps.Load(ctx, "nobody"); cp.Request != projection.RequestNone {
		t.Fatalf("stop of an unknown projection left a request: %+v", cp)
	}
}

// Where checkpoints are looked for, and what is said when they are not
// there.
func TestProjectionsCheckpointsFlag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, path := sqliteURL(t)
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cps, err := sqlcheckpoint.New(s.DB(), sqlcheckpoint.SQLite, sqlcheckpoint.WithTablePrefix("app_"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cps.Request(ctx, "orders", projection.RequestStop); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		code int
		args []string
		says []string
	}{
		{2, []string{"-s", "memory://", "projections", "list"}, []string{"need a SQL database", "memory://", "--checkpoints URL"}},
		{2, []string{"-s", "nats://127.0.0.1:1", "projections", "status", "x"}, []string{"need a SQL database", "--checkpoints"}},
		{2, []string{"-s", "memory://", "projections", "--checkpoints", "memory://", "list"}, []string{"need a SQL database"}},
		{2, []string{"-s", store, "projections", "--schema", "s", "list"}, []string{"--schema", "PostgreSQL"}},
		{2, []string{"-s", store, "projections", "--table-prefix", "bad-", "list"}, []string{"bad-projections"}},
		{3, []string{"-s", store, "projections", "list"}, []string{"es_projections", "does not exist", "--table-prefix"}},
		{3, []string{"-s", "memory://", "projections", "--checkpoints", "sqlite://" + filepath.Join(t.TempDir(), "none.db"), "list"}, []string{"does not exist"}},
		{2, []string{"-s", store, "projections", "frob"}, []string{"unknown command"}},
	} {
		wantFail(t, c.args, tool(t, ctx, "", c.args...), c.code, c.says...)
	}
	for _, args := range [][]string{
		{"-s", store, "projections", "--table-prefix", "app_", "list"},
		{"-s", "memory://", "projections", "--checkpoints", store, "--table-prefix", "app_", "list"},
	} {
		r := tool(t, ctx, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "orders") || !strings.Contains(r.stdout, "new") {
			t.Errorf("%v: %+v", args, r)
		}
	}
	if r := tool(t, ctx, "", "--help"); !strings.Contains(r.stdout, "6  projections verify found a mismatch") || !strings.Contains(r.stdout, "projections") {
		t.Errorf("--help does not document projections and exit code 6:\n%s", r.stdout)
	}
}

// MySQL: the store's own database, and the same through --checkpoints.
func TestProjectionsMySQL(t *testing.T) {
	t.Parallel()
	dsn := testenv.MySQL.URL(t) // root@tcp(127.0.0.1:3306)/test
	ctx := context.Background()
	prefix := testenv.Name("cli_proj_") + "_"
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rows, err := db.Query("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE ?", prefix+"%")
		if err == nil {
			names, _ := collect(rows)
			for _, n := range names {
				db.Exec("DROP TABLE `" + n + "`")
			}
		}
		db.Close()
	})
	u := "mysql://" + strings.NewReplacer("tcp(", "", ")", "").Replace(dsn)
	store := u + "?prefix=" + prefix
	if r := tool(t, ctx, "", "-s", store, "append", "orders-1", "-t", "Placed"); r.code != 0 {
		t.Fatalf("append: %+v", r)
	}
	cps, err := sqlcheckpoint.New(db, sqlcheckpoint.MySQL, sqlcheckpoint.WithTablePrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if err := cps.SetStatus(ctx, "orders", projection.StatusStopped); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-s", store, "projections", "--table-prefix", prefix, "list"},
		{"-s", "memory://", "projections", "--checkpoints", u, "--table-prefix", prefix, "list"},
	} {
		if r := tool(t, ctx, "", args...); r.code != 0 || !strings.Contains(r.stdout, "orders") || !strings.Contains(r.stdout, "stopped") {
			t.Errorf("%v: %+v", args, r)
		}
	}
	args := []string{"-s", "memory://", "projections", "--checkpoints", u, "--table-prefix", prefix, "start", "orders"}
	if r := tool(t, ctx, "", args...); r.code != 0 || !strings.Contains(r.stdout, "started orders") {
		t.Fatalf("%v: %+v", args, r)
	}
	if cp, err := cps.Load(ctx, "orders"); err != nil || cp.Status != projection.StatusRunning {
		t.Fatalf("after start: %+v, %v", cp, err)
	}
	args = []string{"-s", store, "projections", "--table-prefix", prefix + "x_", "list"}
	wantFail(t, args, tool(t, ctx, "", args...), 3, prefix+"x_projections", "does not exist")
}

func collect(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/postgres"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
)

// countModel is a read model in the store's schema: a count per stream,
// and one row per position under a primary key, so that a record applied
// twice fails the append. It also keeps, in memory, the records Apply was
// given (in order), and fails on records of type "Boom" when boom is set.
type countModel struct {
	schema, prefix string
	boom           bool
	inits          atomic.Int32

	mu   sync.Mutex
	seen []eventsource.Record
}

func (m *countModel) table(name string) string {
	return pgx.Identifier{m.schema, m.prefix + name}.Sanitize()
}

func (m *countModel) IsInitialized(ctx context.Context, tx pgx.Tx) (bool, error) {
	var n int
	err := tx.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ($2, $3)",
		m.schema, m.prefix+"counts", m.prefix+"rows").Scan(&n)
	return n == 2, err
}

func (m *countModel) Init(ctx context.Context, tx pgx.Tx) error {
	m.inits.Add(1)
	_, err := tx.Exec(ctx, "CREATE TABLE "+m.table("counts")+" (stream text PRIMARY KEY, n bigint NOT NULL); "+
		"CREATE TABLE "+m.table("rows")+" (position bigint PRIMARY KEY, stream text NOT NULL, version bigint NOT NULL)")
	return err
}

func (m *countModel) Apply(ctx context.Context, tx pgx.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if m.boom && r.Type == "Boom" {
			return errBoom
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+m.table("rows")+" VALUES ($1, $2, $3)", int64(r.Position), r.StreamID, r.Version); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+m.table("counts")+" VALUES ($1, 1) ON CONFLICT (stream) DO UPDATE SET n = "+m.table("counts")+".n + 1", r.StreamID); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.seen = append(m.seen, recs...)
	m.mu.Unlock()
	return nil
}

func (m *countModel) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "TRUNCATE "+m.table("counts")+", "+m.table("rows"))
	return err
}

func (m *countModel) Delete(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "DROP TABLE "+m.table("counts")+", "+m.table("rows"))
	return err
}

var errBoom = errors.New("boom")

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// counts reads the model through q: records per stream, positions in order.
func (m *countModel) counts(t *testing.T, q querier) (map[string]int, []uint64) {
	t.Helper()
	ctx := context.Background()
	out := map[string]int{}
	rows, err := q.Query(ctx, "SELECT stream, n FROM "+m.table("counts"))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		out[s] = n
	}
	rows.Close()
	var pos []uint64
	rows, err = q.Query(ctx, "SELECT position FROM "+m.table("rows")+" ORDER BY position")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		pos = append(pos, uint64(p))
	}
	rows.Close()
	return out, pos
}

// logOf reads what the store shows: records per stream, every position,
// the records.
func logOf(t *testing.T, s eventsource.Store) (map[string]int, []uint64, []eventsource.Record) {
	t.Helper()
	per := map[string]int{}
	var pos []uint64
	var recs []eventsource.Record
	for r, err := range s.ReadAll(context.Background(), 0, eventsource.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		per[r.StreamID]++
		pos = append(pos, r.Position)
		recs = append(recs, r)
	}
	return per, pos, recs
}

// checkModel fails t unless the model holds exactly what the store shows.
func checkModel(t *testing.T, m *countModel, s eventsource.Store) {
	t.Helper()
	gotCounts, gotPos := m.counts(t, pgtest.Pool(t))
	wantCounts, wantPos, _ := logOf(t, s)
	if !reflect.DeepEqual(gotCounts, wantCounts) {
		t.Errorf("read model counts %v, the log %v", gotCounts, wantCounts)
	}
	if !reflect.DeepEqual(gotPos, wantPos) {
		t.Errorf("read model has %d positions, the log %d", len(gotPos), len(wantPos))
	}
}

// storeOn returns a store on the migrated schema, closed when t ends.
func storeOn(t *testing.T, schema string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s := postgres.New(pgtest.Pool(t), append([]postgres.Option{postgres.WithSchema(schema)}, opts...)...)
	t.Cleanup(func() { s.Close() })
	return s
}

// After Append returns, the read model shows the append, and Apply was
// given the records exactly as ReadAll returns them.
func TestInlineReadYourWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, schema := newStore(t)
	m := &countModel{schema: schema, prefix: "rm_"}
	s := storeOn(t, schema, postgres.WithInline("counts", m))
	appends := []struct {
		stream string
		recs   []eventsource.Record
	}{
		{"a", []eventsource.Record{
			{Type: "T", Codec: "json", Data: []byte(`{"x":1}`), Metadata: map[string]string{"user": "ada", "trace": "t-1"}},
			{Type: "T", Codec: "gob"}, // nil data
			{Type: "U", Codec: "json", Data: []byte{}, Metadata: map[string]string{}},
		}},
		{"b", recs(1, "T")},
		{"a", recs(2, "T")},
	}
	n := 0
	for i, a := range appends {
		res, err := s.Append(ctx, a.stream, eventsource.Any, a.recs)
		if err != nil {
			t.Fatal(err)
		}
		n += len(a.recs)
		counts, pos := m.counts(t, pgtest.Pool(t))
		if len(pos) != n || pos[len(pos)-1] != res.LastPosition {
			t.Fatalf("after append %d (positions to %d) the read model has positions %v", i, res.LastPosition, pos)
		}
		if counts[a.stream] != int(res.LastVersion) {
			t.Fatalf("after append %d stream %s is at %d, read model counts %d", i, a.stream, res.LastVersion, counts[a.stream])
		}
	}
	_, _, log := logOf(t, s)
	if !reflect.DeepEqual(m.seen, log) {
		t.Fatalf("Apply was given\n%+v\nReadAll returns\n%+v", m.seen, log)
	}
	if m.inits.Load() != 1 {
		t.Fatalf("Init ran %d times", m.inits.Load())
	}
}

// Appends from goroutines on two stores with the projection (as two
// processes) and one without, concurrently, to shared streams, while
// another transaction keeps holding the visibility bound back for a few
// milliseconds at a time (so appends with the projection walk streams back
// and fill gaps under each other's feet): after a last append with it,
// once the global log shows everything, the read model is exact, each
// position applied once.
func TestInlineConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stop := make(chan struct{})
	holder := make(chan struct{})
	go func() {
		defer close(holder)
		for {
			select {
			case <-stop:
				return
			default:
			}
			tx, err := pgtest.Pool(t).Begin(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			_, err = tx.Exec(ctx, "SELECT pg_current_xact_id(), pg_sleep(0.005)")
			tx.Rollback(ctx)
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	_, schema := newStore(t)
	m := &countModel{schema: schema, prefix: "rm_"}
	stores := []*postgres.Store{
		storeOn(t, schema, postgres.WithInline("counts", m)),
		storeOn(t, schema, postgres.WithInline("counts", m)),
		storeOn(t, schema),
	}
	var wg sync.WaitGroup
	for g := range 9 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := stores[g%3].Append(ctx, fmt.Sprint("c-", (g+i)%5), eventsource.Any, recs(1+i%3, "T")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-holder
	if _, err := stores[0].Head(ctx); err != nil { // waits for the log to show every append
		t.Fatal(err)
	}
	if _, err := stores[0].Append(ctx, "last", eventsource.NoStream, recs(1, "T")); err != nil {
		t.Fatal(err)
	}
	checkModel(t, m, stores[0])
}

// A failing inline projection fails the append, which stores nothing: the
// head, the stream, the read models and the positions stay as they were.
func TestInlineFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, schema := newStore(t)
	good := &countModel{schema: schema, prefix: "good_"}
	bad := &countModel{schema: schema, prefix: "bad_", boom: true}
	s := storeOn(t, schema, postgres.WithInline("good", good), postgres.WithInline("bad", bad))
	if _, err := s.Append(ctx, "f", eventsource.NoStream, recs(2, "T")); err != nil {
		t.Fatal(err)
	}
	head, _ := s.Head(ctx)
	var before int64
	if err := pgtest.Pool(t).QueryRow(ctx, "SELECT position FROM "+schema+".es_inline_projections WHERE name = 'good'").Scan(&before); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(ctx, "f", eventsource.Exact(2), append(recs(1, "T"), recs(1, "Boom")...))
	var ipe *eventsource.InlineProjectionError
	if !errors.Is(err, eventsource.ErrInlineProjection) || !errors.As(err, &ipe) || !errors.Is(err, errBoom) {
		t.Fatalf("append with a failing projection = %v; want an *InlineProjectionError matching ErrInlineProjection and the cause", err)
	}
	if ipe.Projection != "bad" || ipe.Stream != "f" {
		t.Fatalf("error names projection %q, stream %q", ipe.Projection, ipe.Stream)
	}
	if h, _ := s.Head(ctx); h != head {
		t.Fatalf("head moved from %d to %d", head, h)
	}
	if h, err := eventsource.ReadStreamAll(ctx, s, "f"); err != nil || len(h) != 2 {
		t.Fatalf("stream has %d records (%v), want 2", len(h), err)
	}
	for _, m := range []*countModel{good, bad} {
		if c, pos := m.counts(t, pgtest.Pool(t)); c["f"] != 2 || len(pos) != 2 {
			t.Fatalf("read model %s after the failed append: %v %v", m.prefix, c, pos)
		}
	}
	var after, marks int64
	if err := pgtest.Pool(t).QueryRow(ctx, "SELECT position, (SELECT count(*) FROM "+schema+".es_inline_applied WHERE name = 'good' AND last > $1) FROM "+schema+".es_inline_projections WHERE name = 'good'", int64(head)).Scan(&after, &marks); err != nil || after != before || marks != 0 {
		t.Fatalf("good's position %d (before %d), %d ranges past the head, %v", after, before, marks, err)
	}
	if _, err := s.Append(ctx, "f", eventsource.Exact(2), recs(1, "T")); err != nil {
		t.Fatal(err)
	}
	checkModel(t, good, s)
	checkModel(t, bad, s)
}

// An inline projection registered on a store with history catches up when
// the store opens, in batches, with what the global log shows (not a
// deleted stream's records); opened again, it neither inits nor applies
// anything twice.
func TestInlineCatchUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	plain, schema := newStore(t)
	for i := range 35 {
		if _, err := plain.Append(ctx, fmt.Sprint("h-", i%7), eventsource.Any, recs(10, "T")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := plain.Append(ctx, "gone", eventsource.NoStream, recs(2, "T")); err != nil {
		t.Fatal(err)
	}
	if err := plain.DeleteStream(ctx, "gone", eventsource.Any); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Head(ctx); err != nil { // the log shows every append
		t.Fatal(err)
	}
	m := &countModel{schema: schema, prefix: "rm_"}
	s, err := postgres.Open(ctx, testenv.Postgres.URL(t), postgres.WithSchema(schema), postgres.WithInline("counts", m), postgres.WithBatchSize(40))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkModel(t, m, s)
	if c, _ := m.counts(t, pgtest.Pool(t)); c["h-0"] != 50 || c["gone"] != 0 {
		t.Fatalf("after the catch-up: %v", c)
	}
	if len(m.seen) != 350 {
		t.Fatalf("caught up %d records, want 350", len(m.seen))
	}
	again := storeOn(t, schema, postgres.WithInline("counts", m))
	if _, err := again.Append(ctx, "h-0", eventsource.Exact(50), recs(1, "T")); err != nil {
		t.Fatal(err)
	}
	checkModel(t, m, again)
	if n := m.inits.Load(); n != 1 {
		t.Fatalf("Init ran %d times", n)
	}
}

// A store without the option appends between appends of one with it
// (another process): the read model gets both, in position order.
func TestInlineMixed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	without, schema := newStore(t)
	m := &countModel{schema: schema, prefix: "rm_"}
	with := storeOn(t, schema, postgres.WithInline("counts", m), postgres.WithBatchSize(3))
	for i, s := range []*postgres.Store{with, without, without, with, without, with} {
		if _, err := s.Head(ctx); err != nil { // the previous append is below the bound
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, fmt.Sprint("m-", i%2), eventsource.Any, recs(4, "T")); err != nil {
			t.Fatal(err)
		}
	}
	checkModel(t, m, with)
	for i := 1; i < len(m.seen); i++ {
		if m.seen[i].Position <= m.seen[i-1].Position {
			t.Fatalf("applied out of order: %d after %d", m.seen[i].Position, m.seen[i-1].Position)
		}
	}
}

// While a transaction holds the visibility bound back, records appended
// without the option stay above it; an append with the option to the same
// stream applies the stream's earlier versions first, in order, and marks
// them, so that once the bound passes nothing is applied twice and
// nothing is missed.
func TestInlineHeldBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	without, schema := newStore(t)
	m := &countModel{schema: schema, prefix: "rm_"}
	with := storeOn(t, schema, postgres.WithInline("counts", m))
	if _, err := with.Append(ctx, "w", eventsource.NoStream, recs(1, "T")); err != nil {
		t.Fatal(err)
	}
	held, err := pgtest.Pool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Rollback(ctx)
	if _, err := held.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil { // takes a transaction ID: the bound stays below it
		t.Fatal(err)
	}
	for _, stream := range []string{"w", "w", "x"} {
		if _, err := without.Append(ctx, stream, eventsource.Any, recs(2, "T")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := with.Append(ctx, "w", eventsource.Exact(5), recs(1, "T")); err != nil {
		t.Fatal(err)
	}
	var versions []int64
	for _, r := range m.seen {
		if r.StreamID == "w" {
			versions = append(versions, r.Version)
		}
	}
	if c, _ := m.counts(t, pgtest.Pool(t)); !reflect.DeepEqual(versions, []int64{1, 2, 3, 4, 5, 6}) || c["x"] != 0 {
		t.Fatalf("with the bound held back: w applied in the order %v, x %d times; want 1..6 and 0", versions, c["x"])
	}
	if err := held.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := with.Head(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := with.Append(ctx, "y", eventsource.NoStream, recs(1, "T")); err != nil {
		t.Fatal(err)
	}
	checkModel(t, m, with)
}

// AppendTx runs the projections in the caller's transaction: the read
// model shows the append inside it, commits or rolls back with it, and a
// failing projection undoes only that append, leaving the transaction
// usable.
func TestInlineAppendTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, schema := newStore(t)
	good := &countModel{schema: schema, prefix: "good_"}
	bad := &countModel{schema: schema, prefix: "bad_", boom: true}
	s := storeOn(t, schema, postgres.WithInline("good", good), postgres.WithInline("bad", bad))
	pool := pgtest.Pool(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendTx(ctx, tx, "t", eventsource.NoStream, recs(2, "T")); err != nil {
		t.Fatal(err)
	}
	if in, _ := good.counts(t, tx); in["t"] != 2 {
		t.Fatalf("inside the transaction the read model counts %v", in)
	}
	if out, _ := good.counts(t, pool); out["t"] != 0 {
		t.Fatalf("outside the transaction the read model counts %v before the commit", out)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if out, _ := good.counts(t, pool); out["t"] != 0 {
		t.Fatalf("after the rollback the read model counts %v", out)
	}

	tx, err = pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := s.AppendTx(ctx, tx, "t", eventsource.NoStream, recs(2, "T")); err != nil {
		t.Fatal(err)
	}
	_, err = s.AppendTx(ctx, tx, "t", eventsource.Exact(2), recs(1, "Boom"))
	var ipe *eventsource.InlineProjectionError
	if !errors.As(err, &ipe) || ipe.Projection != "bad" || !errors.Is(err, errBoom) {
		t.Fatalf("AppendTx with a failing projection = %v", err)
	}
	if _, err := s.AppendTx(ctx, tx, "t", eventsource.Exact(2), recs(1, "T")); err != nil {
		t.Fatalf("the transaction after the failed AppendTx: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if h, err := eventsource.ReadStreamAll(ctx, s, "t"); err != nil || len(h) != 3 {
		t.Fatalf("stream has %d records (%v), want 3", len(h), err)
	}
	checkModel(t, good, s)
	checkModel(t, bad, s)
}

// An exact retry of an append stores nothing and applies nothing.
func TestInlineIdempotentRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, schema := newStore(t)
	m := &countModel{schema: schema, prefix: "rm_"}
	s := storeOn(t, schema, postgres.WithInline("counts", m))
	batch := recs(2, "T")
	for i := range batch {
		batch[i].EventID = fmt.Sprint(schema, "-evt-", i)
	}
	first, err := s.Append(ctx, "r", eventsource.NoStream, batch)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(ctx, "r", eventsource.NoStream, batch)
	if err != nil || again != first {
		t.Fatalf("retry = %+v, %v; want %+v", again, err, first)
	}
	checkModel(t, m, s)
	if len(m.seen) != 2 {
		t.Fatalf("Apply saw %d records, want 2", len(m.seen))
	}
}

func TestInlineConfig(t *testing.T) {
	m := &countModel{schema: "unused", prefix: "unused_"}
	for _, tc := range []struct {
		name string
		opts []postgres.Option
	}{
		{"empty name", []postgres.Option{postgres.WithInline("", m)}},
		{"long name", []postgres.Option{postgres.WithInline(strings.Repeat("n", 201), m)}},
		{"NUL", []postgres.Option{postgres.WithInline("a\x00b", m)}},
		{"bad UTF-8", []postgres.Option{postgres.WithInline("a\xffb", m)}},
		{"twice", []postgres.Option{postgres.WithInline("a", m), postgres.WithInline("a", m)}},
		{"nil read model", []postgres.Option{postgres.WithInline("a", nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := postgres.New(pgtest.Pool(t), tc.opts...)
			if _, err := s.Append(context.Background(), "x", eventsource.Any, recs(1, "T")); !errors.Is(err, eventsource.ErrInvalidConfig) {
				t.Fatalf("Append = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

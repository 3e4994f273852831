package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// countModel is a read model in the store's database: a count per stream,
// and one row per position under a primary key, so that a record applied
// twice fails the append. It also keeps, in memory, the records Apply was
// given, and fails on records of type "Boom" when boom is set.
type countModel struct {
	prefix string
	boom   bool
	inits  atomic.Int32

	mu   sync.Mutex
	seen []eventsource.Record
}

func (m *countModel) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)`,
		m.prefix+"counts", m.prefix+"rows").Scan(&n)
	return n == 2, err
}

func (m *countModel) Init(ctx context.Context, tx *sql.Tx) error {
	m.inits.Add(1)
	_, err := tx.ExecContext(ctx, `CREATE TABLE `+m.prefix+`counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL);
		CREATE TABLE `+m.prefix+`rows (position INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL)`)
	return err
}

func (m *countModel) Apply(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if m.boom && r.Type == "Boom" {
			return errBoom
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+m.prefix+`rows VALUES (?, ?, ?)`, r.Position, r.StreamID, r.Version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+m.prefix+`counts VALUES (?, 1) ON CONFLICT (stream) DO UPDATE SET n = n + 1`, r.StreamID); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.seen = append(m.seen, recs...)
	m.mu.Unlock()
	return nil
}

func (m *countModel) Reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM `+m.prefix+`counts; DELETE FROM `+m.prefix+`rows`)
	return err
}

func (m *countModel) Delete(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DROP TABLE `+m.prefix+`counts; DROP TABLE `+m.prefix+`rows`)
	return err
}

var errBoom = errors.New("boom")

// counts reads the model: records per stream, and the positions of its
// rows in order.
func (m *countModel) counts(t *testing.T, db *sql.DB) (map[string]int, []uint64) {
	t.Helper()
	ctx := context.Background()
	out := map[string]int{}
	rows, err := db.QueryContext(ctx, `SELECT stream, n FROM `+m.prefix+`counts`)
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
	rows, err = db.QueryContext(ctx, `SELECT position FROM `+m.prefix+`rows ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p uint64
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
	}
	rows.Close()
	return out, pos
}

// logOf reads what the store shows: records per stream and every position.
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
func checkModel(t *testing.T, m *countModel, db *sql.DB, s eventsource.Store) {
	t.Helper()
	gotCounts, gotPos := m.counts(t, db)
	wantCounts, wantPos, _ := logOf(t, s)
	if !reflect.DeepEqual(gotCounts, wantCounts) {
		t.Errorf("read model counts %v, the log %v", gotCounts, wantCounts)
	}
	if !reflect.DeepEqual(gotPos, wantPos) {
		t.Errorf("read model has %d positions, the log %d", len(gotPos), len(wantPos))
	}
}

func inlineStore(t *testing.T, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func recs(types ...string) []eventsource.Record {
	out := make([]eventsource.Record, len(types))
	for i, typ := range types {
		out[i] = eventsource.Record{Type: typ, Codec: "json", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	return out
}

func nrecs(n int) []eventsource.Record {
	types := make([]string, n)
	for i := range types {
		types[i] = "T"
	}
	return recs(types...)
}

// After Append returns, the read model shows the append, and Apply was
// given the records exactly as ReadAll returns them.
func TestInlineReadYourWrites(t *testing.T) {
	ctx := context.Background()
	m := &countModel{prefix: "rm_"}
	s := inlineStore(t, filepath.Join(t.TempDir(), "ryw.db"), sqlite.WithInline("counts", m))
	appends := []struct {
		stream string
		recs   []eventsource.Record
	}{
		{"a", []eventsource.Record{
			{Type: "T", Codec: "json", Data: []byte(`{"x":1}`), Metadata: map[string]string{"user": "ada", "trace": "t-1"}},
			{Type: "T", Codec: "gob"}, // nil data
			{Type: "U", Codec: "json", Data: []byte{}, Metadata: map[string]string{}}, // empty data and metadata
		}},
		{"b", recs("T")},
		{"a", recs("T", "T")},
	}
	for i, a := range appends {
		res, err := s.Append(ctx, a.stream, eventsource.Any, a.recs)
		if err != nil {
			t.Fatal(err)
		}
		counts, pos := m.counts(t, s.DB())
		if pos[len(pos)-1] != res.LastPosition || len(pos) != int(res.LastPosition) {
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

// Appends from several goroutines on two Store values with the projection
// on one file (as two processes) and one without: after a last append with
// it, the read model is exact, each position applied once.
func TestInlineConcurrent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "conc.db")
	m := &countModel{prefix: "rm_"}
	a := inlineStore(t, path, sqlite.WithInline("counts", m))
	b := inlineStore(t, path, sqlite.WithInline("counts", m))
	without := inlineStore(t, path)
	var wg sync.WaitGroup
	for g := range 9 {
		s := []*sqlite.Store{a, b, without}[g%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, err := s.Append(ctx, fmt.Sprint("c-", (g+i)%5), eventsource.Any, nrecs(1+i%3)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if _, err := a.Append(ctx, "last", eventsource.NoStream, nrecs(1)); err != nil {
		t.Fatal(err)
	}
	checkModel(t, m, a.DB(), a)
}

// A failing inline projection fails the append, which stores nothing: the
// head, the stream, the other projections' read models and positions stay
// as they were.
func TestInlineFailure(t *testing.T) {
	ctx := context.Background()
	good, bad := &countModel{prefix: "good_"}, &countModel{prefix: "bad_", boom: true}
	s := inlineStore(t, filepath.Join(t.TempDir(), "fail.db"), sqlite.WithInline("good", good), sqlite.WithInline("bad", bad))
	if _, err := s.Append(ctx, "f", eventsource.NoStream, recs("T", "T")); err != nil {
		t.Fatal(err)
	}
	head, _ := s.Head(ctx)
	_, err := s.Append(ctx, "f", eventsource.Exact(2), recs("T", "Boom"))
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
		if c, pos := m.counts(t, s.DB()); c["f"] != 2 || len(pos) != 2 {
			t.Fatalf("read model %s after the failed append: %v %v", m.prefix, c, pos)
		}
	}
	var p int64
	if err := s.DB().QueryRowContext(ctx, `SELECT position FROM es_inline_projections WHERE name = 'good'`).Scan(&p); err != nil || p != 2 {
		t.Fatalf("good's position = %d, %v; want 2", p, err)
	}
	// The store goes on.
	if _, err := s.Append(ctx, "f", eventsource.Exact(2), recs("T")); err != nil {
		t.Fatal(err)
	}
	checkModel(t, good, s.DB(), s)
	checkModel(t, bad, s.DB(), s)
}

// An inline projection registered on a store with history catches up when
// the store opens, in batches, with what the global log shows (not a
// deleted stream's records); opened again, it neither inits nor applies
// anything twice.
func TestInlineCatchUp(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catchup.db")
	plain := inlineStore(t, path)
	for i := range 35 {
		if _, err := plain.Append(ctx, fmt.Sprint("h-", i%7), eventsource.Any, nrecs(10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := plain.Append(ctx, "gone", eventsource.NoStream, recs("T", "T")); err != nil {
		t.Fatal(err)
	}
	if err := plain.DeleteStream(ctx, "gone", eventsource.Any); err != nil {
		t.Fatal(err)
	}
	m := &countModel{prefix: "rm_"}
	s := inlineStore(t, path, sqlite.WithInline("counts", m), sqlite.WithBatchSize(40))
	checkModel(t, m, s.DB(), s)
	if c, _ := m.counts(t, s.DB()); c["h-0"] != 50 || c["gone"] != 0 {
		t.Fatalf("after the catch-up: %v", c)
	}
	if len(m.seen) != 350 {
		t.Fatalf("caught up %d records, want 350", len(m.seen))
	}
	s.Close()
	again := inlineStore(t, path, sqlite.WithInline("counts", m))
	if _, err := again.Append(ctx, "h-0", eventsource.Exact(50), recs("T")); err != nil {
		t.Fatal(err)
	}
	checkModel(t, m, again.DB(), again)
	if n := m.inits.Load(); n != 1 {
		t.Fatalf("Init ran %d times", n)
	}
}

// A store opened without the option appends between appends of one with
// it (another process): the read model gets both, in position order.
func TestInlineMixed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mixed.db")
	m := &countModel{prefix: "rm_"}
	with := inlineStore(t, path, sqlite.WithInline("counts", m), sqlite.WithBatchSize(3))
	without := inlineStore(t, path)
	steps := []*sqlite.Store{with, without, without, with, without, with}
	for i, s := range steps {
		if _, err := s.Append(ctx, fmt.Sprint("m-", i%2), eventsource.Any, recs("T", "T", "T", "T")); err != nil {
			t.Fatal(err)
		}
	}
	checkModel(t, m, with.DB(), with)
	for i := 1; i < len(m.seen); i++ {
		if m.seen[i].Position != m.seen[i-1].Position+1 {
			t.Fatalf("applied out of order: %d after %d", m.seen[i].Position, m.seen[i-1].Position)
		}
	}
}

// An exact retry of an append stores nothing and applies nothing.
func TestInlineIdempotentRetry(t *testing.T) {
	ctx := context.Background()
	m := &countModel{prefix: "rm_"}
	s := inlineStore(t, filepath.Join(t.TempDir(), "retry.db"), sqlite.WithInline("counts", m))
	batch := recs("T", "T")
	for i := range batch {
		batch[i].EventID = fmt.Sprint("evt-", i)
	}
	first, err := s.Append(ctx, "r", eventsource.NoStream, batch)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(ctx, "r", eventsource.NoStream, batch)
	if err != nil || again != first {
		t.Fatalf("retry = %+v, %v; want %+v", again, err, first)
	}
	checkModel(t, m, s.DB(), s)
	if len(m.seen) != 2 {
		t.Fatalf("Apply saw %d records, want 2", len(m.seen))
	}
}

func TestInlineConfig(t *testing.T) {
	m := &countModel{prefix: "rm_"}
	for _, tc := range []struct {
		name string
		opts []sqlite.Option
	}{
		{"empty name", []sqlite.Option{sqlite.WithInline("", m)}},
		{"long name", []sqlite.Option{sqlite.WithInline(strings.Repeat("n", 201), m)}},
		{"NUL", []sqlite.Option{sqlite.WithInline("a\x00b", m)}},
		{"bad UTF-8", []sqlite.Option{sqlite.WithInline("a\xffb", m)}},
		{"twice", []sqlite.Option{sqlite.WithInline("a", m), sqlite.WithInline("a", m)}},
		{"nil read model", []sqlite.Option{sqlite.WithInline("a", nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "cfg.db"), tc.opts...); !errors.Is(err, eventsource.ErrInvalidConfig) {
				t.Fatalf("Open = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

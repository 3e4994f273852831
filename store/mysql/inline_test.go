package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/internal/testenv"
	"github.com/eventsource-go/eventsource/store/mysql"
)

// countModel is a read model in the store's database: a count per stream,
// and one row per position under a primary key, so that a record applied
// twice fails the append. It also keeps, in memory, the records Apply was
// given (in order), and fails on records of type "Boom" when boom is set.
type countModel struct {
	prefix string
	boom   bool
	inits  atomic.Int32

	mu   sync.Mutex
	seen []eventsource.Record
}

// newModel returns a model whose tables, named after prefix, are dropped
// when t ends.
func newModel(t *testing.T, prefix string) *countModel {
	t.Cleanup(func() {
		for _, tbl := range []string{"counts", "rows"} {
			_, _ = testDB(t).Exec("DROP TABLE IF EXISTS `" + prefix + tbl + "`")
		}
	})
	return &countModel{prefix: prefix}
}

func (m *countModel) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN (?, ?)",
		m.prefix+"counts", m.prefix+"rows").Scan(&n)
	return n == 2, err
}

func (m *countModel) Init(ctx context.Context, tx *sql.Tx) error {
	m.inits.Add(1)
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS `"+m.prefix+"counts` (stream VARBINARY(200) PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB"); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS `"+m.prefix+"rows` (position BIGINT UNSIGNED PRIMARY KEY, stream VARBINARY(200) NOT NULL, version BIGINT NOT NULL) ENGINE=InnoDB")
	return err
}

func (m *countModel) Apply(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if m.boom && r.Type == "Boom" {
			return errBoom
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO `"+m.prefix+"rows` VALUES (?, ?, ?)", r.Position, r.StreamID, r.Version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO `"+m.prefix+"counts` VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1", r.StreamID); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.seen = append(m.seen, recs...)
	m.mu.Unlock()
	return nil
}

func (m *countModel) Reset(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM `"+m.prefix+"counts`"); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "DELETE FROM `"+m.prefix+"rows`")
	return err
}

func (m *countModel) Delete(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS `"+m.prefix+"counts`, `"+m.prefix+"rows`")
	return err
}

var errBoom = errors.New("boom")

// counts reads the model: records per stream, and its positions in order.
func (m *countModel) counts(t *testing.T) (map[string]int, []uint64) {
	t.Helper()
	db := testDB(t)
	out := map[string]int{}
	rows, err := db.Query("SELECT stream, n FROM `" + m.prefix + "counts`")
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
	rows, err = db.Query("SELECT position FROM `" + m.prefix + "rows` ORDER BY position")
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
	gotCounts, gotPos := m.counts(t)
	wantCounts, wantPos, _ := logOf(t, s)
	if !reflect.DeepEqual(gotCounts, wantCounts) {
		t.Errorf("read model counts %v, the log %v", gotCounts, wantCounts)
	}
	if !reflect.DeepEqual(gotPos, wantPos) {
		t.Errorf("read model has %d positions, the log %d", len(gotPos), len(wantPos))
	}
}

// storeOn returns a store on prefix (migrated by an earlier store, or by
// this one), closed when t ends.
func storeOn(t *testing.T, prefix string, opts ...mysql.Option) *mysql.Store {
	t.Helper()
	s := mysql.New(testDB(t), append([]mysql.Option{mysql.WithTablePrefix(prefix)}, opts...)...)
	t.Cleanup(func() { s.Close() })
	return s
}

func recs(n int, typ string) []eventsource.Record {
	out := make([]eventsource.Record, n)
	for i := range out {
		out[i] = eventsource.Record{Type: typ, Codec: "json", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	return out
}

// After Append returns, the read model shows the append, and Apply was
// given the records exactly as ReadAll returns them.
func TestInlineReadYourWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, prefix := newStore(t)
	m := newModel(t, prefix+"rm_")
	s := storeOn(t, prefix, mysql.WithInline("counts", m))
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
	for i, a := range appends {
		res, err := s.Append(ctx, a.stream, eventsource.Any, a.recs)
		if err != nil {
			t.Fatal(err)
		}
		counts, pos := m.counts(t)
		if len(pos) == 0 || pos[len(pos)-1] != res.LastPosition || len(pos) != int(res.LastPosition) {
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
// processes) and one without: after a last append with it, the read model
// is exact, each position applied once.
func TestInlineConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, prefix := newStore(t)
	m := newModel(t, prefix+"rm_")
	stores := []*mysql.Store{
		storeOn(t, prefix, mysql.WithInline("counts", m)),
		storeOn(t, prefix, mysql.WithInline("counts", m)),
		storeOn(t, prefix),
	}
	var wg sync.WaitGroup
	for g := range 6 {
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
	_, prefix := newStore(t)
	good, bad := newModel(t, prefix+"good_"), newModel(t, prefix+"bad_")
	bad.boom = true
	s := storeOn(t, prefix, mysql.WithInline("good", good), mysql.WithInline("bad", bad))
	if _, err := s.Append(ctx, "f", eventsource.NoStream, recs(2, "T")); err != nil {
		t.Fatal(err)
	}
	head, _ := s.Head(ctx)
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
		if c, pos := m.counts(t); c["f"] != 2 || len(pos) != 2 {
			t.Fatalf("read model %s after the failed append: %v %v", m.prefix, c, pos)
		}
	}
	var p int64
	if err := testDB(t).QueryRow("SELECT position FROM `" + prefix + "inline_projections` WHERE name = 'good'").Scan(&p); err != nil || p != 2 {
		t.Fatalf("good's position = %d, %v; want 2", p, err)
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
	plain, prefix := newStore(t)
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
	m := newModel(t, prefix+"rm_")
	s, err := mysql.Open(ctx, testenv.MySQL.URL(t), mysql.WithTablePrefix(prefix), mysql.WithInline("counts", m), mysql.WithBatchSize(40))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkModel(t, m, s)
	if c, _ := m.counts(t); c["h-0"] != 50 || c["gone"] != 0 {
		t.Fatalf("after the catch-up: %v", c)
	}
	if len(m.seen) != 350 {
		t.Fatalf("caught up %d records, want 350", len(m.seen))
	}
	again := storeOn(t, prefix, mysql.WithInline("counts", m))
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
	without, prefix := newStore(t)
	m := newModel(t, prefix+"rm_")
	with := storeOn(t, prefix, mysql.WithInline("counts", m), mysql.WithBatchSize(3))
	for i, s := range []*mysql.Store{with, without, without, with, without, with} {
		if _, err := s.Append(ctx, fmt.Sprint("m-", i%2), eventsource.Any, recs(4, "T")); err != nil {
			t.Fatal(err)
		}
	}
	checkModel(t, m, with)
	for i := 1; i < len(m.seen); i++ {
		if m.seen[i].Position != m.seen[i-1].Position+1 {
			t.Fatalf("applied out of order: %d after %d", m.seen[i].Position, m.seen[i-1].Position)
		}
	}
}

// An exact retry of an append stores nothing and applies nothing.
func TestInlineIdempotentRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, prefix := newStore(t)
	m := newModel(t, prefix+"rm_")
	s := storeOn(t, prefix, mysql.WithInline("counts", m))
	batch := recs(2, "T")
	for i := range batch {
		batch[i].EventID = fmt.Sprint(prefix, "evt-", i)
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
	m := &countModel{prefix: "unused_"}
	for _, tc := range []struct {
		name string
		opts []mysql.Option
	}{
		{"empty name", []mysql.Option{mysql.WithInline("", m)}},
		{"long name", []mysql.Option{mysql.WithInline(strings.Repeat("n", 201), m)}},
		{"NUL", []mysql.Option{mysql.WithInline("a\x00b", m)}},
		{"bad UTF-8", []mysql.Option{mysql.WithInline("a\xffb", m)}},
		{"twice", []mysql.Option{mysql.WithInline("a", m), mysql.WithInline("a", m)}},
		{"nil read model", []mysql.Option{mysql.WithInline("a", nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mysql.New(testDB(t), tc.opts...)
			if _, err := s.Append(context.Background(), "x", eventsource.Any, recs(1, "T")); !errors.Is(err, eventsource.ErrInvalidConfig) {
				t.Fatalf("Append = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

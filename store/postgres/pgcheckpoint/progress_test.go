package pgcheckpoint_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/store/postgres/internal/pgtest"
	"github.com/eventsource-go/eventsource/store/postgres/pgcheckpoint"
)

// TestOldTable: a table made before checkpoints kept progress gets the
// column on first use, by every store at once, and its rows keep working.
func TestOldTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := pgtest.Pool(t)
	schema := pgtest.Schema(t, "es_p_")
	for _, sql := range []string{
		`CREATE TABLE ` + schema + `.es_projections (
			name        text PRIMARY KEY,
			position    bigint NOT NULL DEFAULT 0,
			state       bytea,
			status      text NOT NULL DEFAULT '',
			error       text NOT NULL DEFAULT '',
			faulted_at  bigint NOT NULL DEFAULT 0,
			skipped     bigint[],
			request     text NOT NULL DEFAULT '',
			owner       text NOT NULL DEFAULT '',
			lease_until timestamptz,
			updated_at  timestamptz
		)`,
		`INSERT INTO ` + schema + `.es_projections (name, position, status, skipped, owner, lease_until)
			VALUES ('old', 12, 'running', '{4}', 'a', clock_timestamp() + interval '1 hour')`,
	} {
		if _, err := p.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	stores := make([]*pgcheckpoint.Store, 4)
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i := range stores {
		s, err := pgcheckpoint.New(p, pgcheckpoint.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp, err := s.Load(ctx, "old")
			if err == nil && (cp.Position != 12 || cp.Status != projection.StatusRunning || cp.Holder != "a" || len(cp.Skipped) != 1 || cp.Done != nil) {
				t.Errorf("old row: %+v", cp)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var typ string
	if err := p.QueryRow(ctx, `SELECT data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'es_projections' AND column_name = 'progress'`,
		schema).Scan(&typ); err != nil || typ != "bytea" {
		t.Fatalf("progress column: %q, %v", typ, err)
	}
	s := stores[0]
	want := projection.Checkpoint{Name: "old", Position: 13, Status: projection.StatusRunning, Skipped: []uint64{4},
		Done: []projection.Range{{From: 15, To: 16}}, Parked: []projection.ParkedEvent{{Position: 14, Stream: "s", Key: "s", At: time.Now().UTC().Truncate(time.Microsecond)}}}
	if _, err := s.Save(ctx, "a", want, projection.RequestNone); err != nil {
		t.Fatal(err)
	}
	err := s.InTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		got, err := s.LoadTx(ctx, tx, "old")
		if err == nil && (got.Position != 13 || !reflect.DeepEqual(got.Done, want.Done) || !reflect.DeepEqual(got.Parked, want.Parked)) {
			t.Errorf("after Save: %+v, want %+v", got, want)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

package projection_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// tolerant is a read model that tolerates an event applied twice (it counts
// applications per position), so a planted duplicate reaches Verify.
// Its table is "applied" and a suffix.
type tolerant struct{ suffix string }

func (m tolerant) table() string { return "applied" + m.suffix }

func (m tolerant) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = ?`, m.table()).Scan(&n)
	return n == 1, err
}

func (m tolerant) Init(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE `+m.table()+` (position INTEGER PRIMARY KEY, n INTEGER NOT NULL)`)
	return err
}

func (m tolerant) Apply(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+m.table()+` (position, n) VALUES (?, 1) ON CONFLICT (position) DO UPDATE SET n = n + 1`, int64(r.Position)); err != nil {
			return err
		}
	}
	return nil
}

func (m tolerant) Reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM `+m.table())
	return err
}

func (m tolerant) Delete(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DROP TABLE `+m.table())
	return err
}

// sparse is a store whose positions are spread out as PostgreSQL's are
// (a transaction ID shifted left by 20 bits, plus an index): the inner
// store's position times 2²⁰.
type sparse struct{ eventsource.Store }

const spread = 1 << 20

func (s sparse) Append(ctx context.Context, stream string, expected eventsource.ExpectedVersion, recs []eventsource.Record) (eventsource.AppendResult, error) {
	res, err := s.Store.Append(ctx, stream, expected, recs)
	res.FirstPosition, res.LastPosition = res.FirstPosition*spread, res.LastPosition*spread
	return res, err
}

func (s sparse) ReadStream(ctx context.Context, stream string, from, to int64) iter.Seq2[eventsource.Record, error] {
	return spreadOut(s.Store.ReadStream(ctx, stream, from, to))
}

func (s sparse) ReadAll(ctx context.Context, from uint64, f eventsource.Filter) iter.Seq2[eventsource.Record, error] {
	return spreadOut(s.Store.ReadAll(ctx, (from+spread-1)/spread, f))
}

func spreadOut(seq iter.Seq2[eventsource.Record, error]) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		for r, err := range seq {
			r.Position *= spread
			if !yield(r, err) {
				return
			}
		}
	}
}

// TestVerifyFindsPlantedFaults plants one missed event and one applied
// twice in a parallel projector's deliveries: Verify reports exactly the
// two ranges holding them, and a clean bill without the fault. On sparse
// positions each event has a cell of its own, which the digests join into
// ranges of about a thousand events: the bill still names the ranges, and
// the checkpoint stays small.
func TestVerifyFindsPlantedFaults(t *testing.T) {
	for _, positions := range []string{"dense", "sparse"} {
		t.Run(positions, func(t *testing.T) { testVerifyFindsPlantedFaults(t, positions == "sparse") })
	}
}

func testVerifyFindsPlantedFaults(t *testing.T, spreadPositions bool) {
	// TestVerifyFindsPlantedFaults plants one missed event and one applied
	// twice in a parallel projector's deliveries: Verify reports exactly the
	// two ranges holding them, and a clean bill without the fault.
	ctx := context.Background()
	events, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	var log eventsource.Store = events
	unit := uint64(1)
	if spreadPositions {
		log, unit = sparse{events}, spread
	}
	batch := make([]eventsource.Record, 500)
	for i := 0; i < 20; i++ {
		for j := range batch {
			batch[j] = eventsource.Record{Type: "Tick"}
		}
		if _, err := log.Append(ctx, fmt.Sprint("s-", i%9), eventsource.Any, batch); err != nil {
			t.Fatal(err)
		}
	}
	const missed, twice = 4321, 7777
	for _, planted := range []bool{false, true} {
		t.Run(fmt.Sprintf("planted=%v", planted), func(t *testing.T) {
			cps, err := sqlcheckpoint.New(events.DB(), sqlcheckpoint.SQLite, sqlcheckpoint.WithTablePrefix(fmt.Sprintf("p%v_", planted)))
			if err != nil {
				t.Fatal(err)
			}
			if planted {
				projection.SetDeliveryHook(func(recs []eventsource.Record) []eventsource.Record {
					out := slices.DeleteFunc(slices.Clone(recs), func(r eventsource.Record) bool { return r.Position == missed*unit })
					for _, r := range recs {
						if r.Position == twice*unit {
							out = append(out, r)
						}
					}
					return out
				})
				defer projection.SetDeliveryHook(nil)
			}
			name := fmt.Sprint("counts-", planted)
			p := projection.NewProjector(name, log, cps, tolerant{}, projection.WithWorkers(3), projection.WithDigestRange(1000),
				projection.WithPolling(time.Millisecond, 10*time.Millisecond))
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Run(rctx) }()
			for p.Checkpoint().Position < 10_000*unit {
				select {
				case err := <-done:
					t.Fatalf("Run = %v", err)
				case <-time.After(5 * time.Millisecond):
				}
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v", err)
			}
			rep, err := p.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cp := p.Checkpoint()
			if len(cp.Digests) > 11 {
				t.Errorf("%d digests in the checkpoint for 10,000 events, want about 10", len(cp.Digests))
			}
			if rep.From != 1 || rep.To != 10_000*unit || rep.Events != 10_000 || rep.Ranges < 10 || rep.Ranges > 11 {
				t.Fatalf("checked %d..%d, %d events in %d ranges; want 1..%d, 10000 events in 10 ranges", rep.From, rep.To, rep.Events, rep.Ranges, 10_000*unit)
			}
			if !planted {
				if !rep.OK() || rep.Ranges != 10 {
					t.Fatalf("clean run: %d ranges, mismatches %v", rep.Ranges, rep.Mismatches)
				}
				return
			}
			if len(rep.Mismatches) != 2 {
				t.Fatalf("mismatches %v, want the two planted ones", rep.Mismatches)
			}
			m1, m2 := rep.Mismatches[0], rep.Mismatches[1]
			if m1.From > missed*unit || m1.To < missed*unit || m1.Got.Count != m1.Want.Count-1 ||
				m2.From > twice*unit || m2.To < twice*unit || m2.Got.Count != m2.Want.Count+1 {
				t.Fatalf("mismatches %v, want one missed around %d and one extra around %d", rep.Mismatches, missed*unit, twice*unit)
			}
			if !spreadPositions && (m1.From != 4001 || m1.To != 5000 || m2.From != 7001 || m2.To != 8000) {
				t.Fatalf("mismatches %v, want one missed in 4001–5000 and one extra in 7001–8000", rep.Mismatches)
			}
			if spreadPositions && (m1.Want.Count < 990 || m1.Want.Count > 1001 || m2.Want.Count < 990 || m2.Want.Count > 1001) {
				t.Fatalf("mismatches %v, want ranges of about a thousand events", rep.Mismatches)
			}
			t.Logf("Verify: %s; %s", m1, m2)
		})
	}
}

// TestBlueGreenChecksDelivery: a new version whose deliveries missed an
// event does not take over when it catches up. Run returns an
// *IncompleteError naming the range, and version 1 goes on serving.
func TestBlueGreenChecksDelivery(t *testing.T) {
	ctx := context.Background()
	events, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	for i := 0; i < 20; i++ {
		batch := make([]eventsource.Record, 100)
		for j := range batch {
			batch[j] = eventsource.Record{Type: "Tick"}
		}
		if _, err := events.Append(ctx, fmt.Sprint("s-", i%7), eventsource.Any, batch); err != nil {
			t.Fatal(err)
		}
	}
	cps, err := sqlcheckpoint.New(events.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	// run runs version v until it has caught up (and taken over) or Run ends.
	run := func(v int) error {
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		p := projection.NewProjector("bg", events, cps, tolerant{fmt.Sprint("_v", v)}, projection.WithVersion(v), projection.WithWorkers(3),
			projection.WithDigestRange(100), projection.WithPolling(time.Millisecond, 10*time.Millisecond), projection.OnCaughtUp(cancel))
		if err := p.Run(rctx); !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
	if err := run(1); err != nil {
		t.Fatal(err)
	}
	const missed = 1234
	projection.SetDeliveryHook(func(recs []eventsource.Record) []eventsource.Record {
		return slices.DeleteFunc(slices.Clone(recs), func(r eventsource.Record) bool { return r.Position == missed })
	})
	err = run(2)
	projection.SetDeliveryHook(nil)
	var ie *projection.IncompleteError
	if !errors.As(err, &ie) || !errors.Is(err, projection.ErrIncomplete) {
		t.Fatalf("Run of version 2 = %v, want an *IncompleteError", err)
	}
	if m := ie.Report.Mismatches; len(m) != 1 || m[0].From > missed || m[0].To < missed || m[0].Got.Count != m[0].Want.Count-1 {
		t.Fatalf("mismatches %v, want one missed event around %d", m, missed)
	}
	if v, err := projection.LiveVersion(ctx, cps, "bg"); err != nil || v != 1 {
		t.Fatalf("LiveVersion = %d, %v; want 1", v, err)
	}
	t.Log(err)
	// Version 3, delivered in full, takes over.
	if err := run(3); err != nil {
		t.Fatal(err)
	}
	if v, err := projection.LiveVersion(ctx, cps, "bg"); err != nil || v != 3 {
		t.Fatalf("LiveVersion = %d, %v; want 3", v, err)
	}
}

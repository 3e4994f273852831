package esotel_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/esotel"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// counts is a read model: events per stream.
type counts struct{}

func (counts) IsInitialized(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'counts'`).Scan(&n)
	return n == 1, err
}

func (counts) Init(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL)`)
	return err
}

func (counts) Apply(ctx context.Context, tx *sql.Tx, recs []eventsource.Record) error {
	for _, r := range recs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO counts (stream, n) VALUES (?, 1) ON CONFLICT (stream) DO UPDATE SET n = n + 1`, r.StreamID); err != nil {
			return err
		}
	}
	return nil
}

func (counts) Reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM counts`)
	return err
}

func (counts) Delete(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DROP TABLE counts`)
	return err
}

// A projector's batch span links to the spans of the appends that produced
// its events, under the span of its checkpoint transaction; the lag,
// handled-events and commit metrics and the projector's gauges are
// recorded.
func TestProjectionLinksToAppends(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	events, err := esotel.NewStore(db, tel.opts...)
	if err != nil {
		t.Fatal(err)
	}
	appendSpans := map[trace.SpanID]bool{}
	for i := range 6 {
		actx, span := tel.tp.Tracer("test").Start(ctx, "command")
		if _, err := events.Append(actx, fmt.Sprint("account-", i%3), eventsource.Any, []eventsource.Record{{Type: "Deposited"}}); err != nil {
			t.Fatal(err)
		}
		span.End()
	}
	for _, s := range tel.ended("append account") {
		appendSpans[s.SpanContext().SpanID()] = true
	}
	if len(appendSpans) != 6 {
		t.Fatalf("%d append spans, want 6", len(appendSpans))
	}

	raw, err := sqlcheckpoint.New(db.DB(), sqlcheckpoint.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	cps, err := esotel.NewCheckpoints[*sql.Tx](raw, tel.opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cps.(projection.CheckpointLister); !ok {
		t.Fatal("the instrumented checkpoint store no longer lists checkpoints")
	}
	rm, err := esotel.NewReadModel[*sql.Tx]("counts", counts{}, tel.opts...)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p := projection.NewProjector("counts", events, cps, rm, projection.WithWorkers(2), projection.OnCaughtUp(cancel),
		projection.WithPolling(time.Millisecond, 10*time.Millisecond))
	reg, err := esotel.ObserveProjector(events, p, tel.opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	if err := p.Run(rctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}

	applies := tel.ended("projection.apply counts")
	if len(applies) == 0 {
		t.Fatal("no projection.apply span")
	}
	commits := map[trace.SpanID]bool{}
	for _, s := range tel.ended("projection.commit") {
		commits[s.SpanContext().SpanID()] = true
	}
	linked := map[trace.SpanID]bool{}
	for _, s := range applies {
		if !commits[s.Parent().SpanID()] {
			t.Errorf("apply span's parent %v is not a projection.commit span", s.Parent().SpanID())
		}
		if s.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("apply span kind %v, want consumer", s.SpanKind())
		}
		for _, l := range s.Links() {
			if !appendSpans[l.SpanContext.SpanID()] {
				t.Errorf("apply span links to %v, not an append", l.SpanContext.SpanID())
			}
			linked[l.SpanContext.SpanID()] = true
		}
	}
	if len(linked) != 6 {
		t.Fatalf("apply spans link to %d of the 6 appends", len(linked))
	}

	ms := tel.metrics(t)
	if n := sum(t, ms, esotel.MetricProjectionHandled, esotel.ProjectionKey.String("counts")); n != 6 {
		t.Errorf("%s = %d, want 6", esotel.MetricProjectionHandled, n)
	}
	lag, ok := ms[esotel.MetricProjectionLag].Data.(metricdata.Histogram[float64])
	if !ok || len(lag.DataPoints) != 1 || lag.DataPoints[0].Count != 6 || lag.DataPoints[0].Sum <= 0 {
		t.Errorf("%s: %+v, want 6 samples", esotel.MetricProjectionLag, ms[esotel.MetricProjectionLag].Data)
	}
	if c, ok := ms[esotel.MetricCommitDuration].Data.(metricdata.Histogram[float64]); !ok || len(c.DataPoints) == 0 {
		t.Errorf("%s: %+v", esotel.MetricCommitDuration, ms[esotel.MetricCommitDuration].Data)
	}
	if g := gauge(t, ms, esotel.MetricProjectionBehind); g != 0 {
		t.Errorf("%s = %d after catching up, want 0", esotel.MetricProjectionBehind, g)
	}
	for _, name := range []string{esotel.MetricProjectionFaults, esotel.MetricProjectionParked, esotel.MetricProjectionSkipped} {
		if g := gauge(t, ms, name); g != 0 {
			t.Errorf("%s = %d, want 0", name, g)
		}
	}
	// Three more appends and the gauge sees the projector behind.
	for i := range 3 {
		if _, err := events.Append(ctx, fmt.Sprint("account-", i), eventsource.Any, []eventsource.Record{{Type: "Deposited"}}); err != nil {
			t.Fatal(err)
		}
	}
	if g := gauge(t, tel.metrics(t), esotel.MetricProjectionBehind); g != 3 {
		t.Errorf("%s = %d with three events unhandled, want 3", esotel.MetricProjectionBehind, g)
	}
}

// gauge is the value of the one data point of int64 gauge name.
func gauge(t *testing.T, ms map[string]metricdata.Metrics, name string) int64 {
	g, ok := ms[name].Data.(metricdata.Gauge[int64])
	if !ok || len(g.DataPoints) != 1 {
		t.Fatalf("%s: %+v", name, ms[name].Data)
	}
	return g.DataPoints[0].Value
}

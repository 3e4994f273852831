package esotel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/eventsource-go/eventsource/projection"
)

// MetricCommitDuration is the duration of a projection transaction (read
// model writes and checkpoint, committed together), in seconds.
const MetricCommitDuration = "eventsource.projection.commit.duration"

// checkpoints is an instrumented projection.TxCheckpointStore.
type checkpoints[Tx any] struct {
	projection.TxCheckpointStore[Tx]
	tracer *tracerSource
	dur    metric.Float64Histogram
}

// lister is checkpoints for a store that lists its checkpoints.
type lister[Tx any] struct {
	*checkpoints[Tx]
	projection.CheckpointLister
}

// NewCheckpoints returns cps instrumented: each transaction a projector
// runs in it (a worker's batch: the read model's Apply, then the
// checkpoint) is a span "projection.commit" and a sample of
// eventsource.projection.commit.duration, with the read model's span (from
// NewReadModel) as its child. A store that lists its checkpoints
// (projection.CheckpointLister) keeps that.
func NewCheckpoints[Tx any](cps projection.TxCheckpointStore[Tx], opts ...Option) (projection.TxCheckpointStore[Tx], error) {
	c := newConfig(opts)
	dur, err := c.mp.Meter(ScopeName).Float64Histogram(MetricCommitDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of a projection's transaction: read model writes and checkpoint."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		return nil, err
	}
	w := &checkpoints[Tx]{TxCheckpointStore: cps, tracer: c.tracer(), dur: dur}
	if l, ok := cps.(projection.CheckpointLister); ok {
		return lister[Tx]{w, l}, nil
	}
	return w, nil
}

// InTx implements projection.TxCheckpointStore.
func (c *checkpoints[Tx]) InTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	ctx, span := c.tracer.start(ctx, func() string { return "projection.commit" }, clientKind...)
	start := time.Now()
	var name string
	err := c.TxCheckpointStore.InTx(ctx, func(ctx context.Context, tx Tx) error {
		return fn(withCheckpointName(ctx, &name), tx)
	})
	if span.IsRecording() && name != "" {
		span.SetAttributes(ProjectionKey.String(name))
	}
	end(span, err)
	if c.dur.Enabled(ctx) && name != "" {
		c.dur.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(ProjectionKey.String(name)))
	}
	return err
}

// WriteTx implements projection.TxCheckpointStore, noting the projection
// the transaction is for.
func (c *checkpoints[Tx]) WriteTx(ctx context.Context, tx Tx, cp projection.Checkpoint) error {
	if p, ok := ctx.Value(checkpointNameKey{}).(*string); ok && *p == "" {
		*p = cp.Name
	}
	return c.TxCheckpointStore.WriteTx(ctx, tx, cp)
}

type checkpointNameKey struct{}

func withCheckpointName(ctx context.Context, name *string) context.Context {
	return context.WithValue(ctx, checkpointNameKey{}, name)
}

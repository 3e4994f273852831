package esotel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

// maxLinks bounds the links of one batch's span to the appends that
// produced its events.
const maxLinks = 128

// readModel is an instrumented projection.ReadModel.
type readModel[Tx any] struct {
	projection.ReadModel[Tx]
	name    attribute.KeyValue
	spanN   string
	tracer  *tracerSource
	prop    propagation.TextMapPropagator
	lag     metric.Float64Histogram
	handled metric.Int64Counter
}

// sideEffects is readModel for a read model with side effects.
type sideEffects[Tx any] struct {
	*readModel[Tx]
	se projection.SideEffects[Tx]
}

// SideEffects implements projection.SideEffects in a span of its own.
func (s sideEffects[Tx]) SideEffects(ctx context.Context, tx Tx, records []eventsource.Record) error {
	ctx, span := s.tracer.start(ctx, func() string { return "projection.side_effects " + s.name.Value.AsString() })
	if span.IsRecording() {
		span.SetAttributes(s.name, EventCountKey.Int(len(records)))
	}
	err := s.se.SideEffects(ctx, tx, records)
	end(span, err)
	return err
}

// NewReadModel returns rm, projector name's read model, instrumented: each
// Apply (a worker's batch, inside its checkpoint transaction) runs in a
// consumer span "projection.apply NAME" linked to the spans of the appends
// that produced its events (the traceparent an instrumented Store wrote
// into their metadata), and every event handled records its lag, from its
// commit (RecordedAt) to now, in eventsource.projection.lag. A read model
// that implements projection.SideEffects keeps it.
func NewReadModel[Tx any](name string, rm projection.ReadModel[Tx], opts ...Option) (projection.ReadModel[Tx], error) {
	c := newConfig(opts)
	m := c.mp.Meter(ScopeName)
	lag, err := m.Float64Histogram(MetricProjectionLag, metric.WithUnit("s"),
		metric.WithDescription("Time from an event's commit to its handling by a projection."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60, 300))
	if err != nil {
		return nil, err
	}
	handled, err := m.Int64Counter(MetricProjectionHandled, metric.WithUnit("{event}"), metric.WithDescription("Events handled by a projection's read model."))
	if err != nil {
		return nil, err
	}
	w := &readModel[Tx]{ReadModel: rm, name: ProjectionKey.String(name), spanN: "projection.apply " + name,
		tracer: c.tracer(), prop: c.prop, lag: lag, handled: handled}
	if se, ok := rm.(projection.SideEffects[Tx]); ok {
		return sideEffects[Tx]{w, se}, nil
	}
	return w, nil
}

// Apply implements projection.ReadModel.
func (m *readModel[Tx]) Apply(ctx context.Context, tx Tx, records []eventsource.Record) error {
	ctx, span := m.tracer.start(ctx, func() string { return m.spanN }, consumerKind...)
	if span.IsRecording() && len(records) > 0 {
		span.SetAttributes(m.name, EventCountKey.Int(len(records)),
			PositionKey.Int64(int64(records[0].Position)), LastPositionKey.Int64(int64(records[len(records)-1].Position)))
		for _, l := range m.links(records) {
			span.AddLink(l)
		}
	}
	err := m.ReadModel.Apply(ctx, tx, records)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	if err == nil && m.lag.Enabled(ctx) {
		now := time.Now()
		set := metric.WithAttributes(m.name)
		for i := range records {
			if !records[i].RecordedAt.IsZero() {
				m.lag.Record(ctx, now.Sub(records[i].RecordedAt).Seconds(), set)
			}
		}
		m.handled.Add(ctx, int64(len(records)), set)
	}
	return err
}

// links are the span contexts of the appends that wrote records, each
// once, at most maxLinks.
func (m *readModel[Tx]) links(records []eventsource.Record) []trace.Link {
	var links []trace.Link
	seen := map[trace.SpanID]bool{}
	for i := range records {
		if len(links) == maxLinks {
			break
		}
		if _, ok := records[i].Metadata[TraceparentKey]; !ok {
			continue
		}
		sc := trace.SpanContextFromContext(m.prop.Extract(context.Background(), propagation.MapCarrier(records[i].Metadata)))
		if !sc.IsValid() || seen[sc.SpanID()] {
			continue
		}
		seen[sc.SpanID()] = true
		links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{PositionKey.Int64(int64(records[i].Position))}})
	}
	return links
}

// SpanContextOf is the span context of the append that wrote r (from its
// traceparent metadata), invalid when it has none.
func SpanContextOf(r eventsource.Record, opts ...Option) trace.SpanContext {
	c := newConfig(opts)
	return trace.SpanContextFromContext(c.prop.Extract(context.Background(), propagation.MapCarrier(r.Metadata)))
}

// TraceContext returns ctx with the span context of the append that wrote
// r as its remote parent, for a handler (a subscription's, a relay's) that
// wants its span in the append's trace rather than linked to it.
func TraceContext(ctx context.Context, r eventsource.Record, opts ...Option) context.Context {
	c := newConfig(opts)
	return c.prop.Extract(ctx, propagation.MapCarrier(r.Metadata))
}

// Checkpointed is what ObserveProjector reads: a Projector or a
// Projection.
type Checkpointed interface {
	Name() string
	Checkpoint() projection.Checkpoint
}

// ObserveProjector registers gauges of p, read at each collection: how far
// the last position it handled is behind the head of the log
// (eventsource.projection.lag.positions, when the store reports its head:
// events on every store but PostgreSQL, whose positions are sparse),
// whether it is faulted
// (eventsource.projection.faults), and its parked and skipped events.
// Unregister the returned registration when p is gone.
func ObserveProjector(events eventsource.Store, p Checkpointed, opts ...Option) (metric.Registration, error) {
	c := newConfig(opts)
	m := c.mp.Meter(ScopeName)
	behind, err1 := m.Int64ObservableGauge(MetricProjectionBehind, metric.WithUnit("{position}"),
		metric.WithDescription("Positions of the global log between its head and a projection's checkpoint."))
	faults, err2 := m.Int64ObservableGauge(MetricProjectionFaults, metric.WithUnit("{fault}"),
		metric.WithDescription("1 while a projection is faulted, else 0."))
	parked, err3 := m.Int64ObservableGauge(MetricProjectionParked, metric.WithUnit("{event}"),
		metric.WithDescription("Events a projection holds parked."))
	skipped, err4 := m.Int64ObservableGauge(MetricProjectionSkipped, metric.WithUnit("{event}"),
		metric.WithDescription("Events a projection skipped."))
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return nil, err
		}
	}
	head, hasHead := eventsource.As[eventsource.HeadReader](events)
	name := metric.WithAttributes(ProjectionKey.String(p.Name()))
	return m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		cp := p.Checkpoint()
		if hasHead {
			h, err := head.Head(ctx)
			if err != nil {
				return err
			}
			last := cp.Position // and what it handled above its low-water mark
			for _, r := range cp.Done {
				last = max(last, r.To)
			}
			o.ObserveInt64(behind, int64(max(h, last)-last), name)
		}
		f := int64(0)
		if cp.Status == projection.StatusFaulted {
			f = 1
		}
		o.ObserveInt64(faults, f, name)
		o.ObserveInt64(parked, int64(len(cp.Parked)), name)
		o.ObserveInt64(skipped, int64(len(cp.Skipped)), name)
		return nil
	}, behind, faults, parked, skipped)
}

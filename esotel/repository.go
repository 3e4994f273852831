package esotel

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsource-go/eventsource"
)

// Repository is an instrumented eventsource.Repository: Load, LoadVersion,
// Save, SaveExpecting and Apply each run in a span (the store's own spans,
// when its store is an esotel Store, are their children), and Apply's
// retries after version conflicts are counted on its span
// (eventsource.retries) and in eventsource.retries. Every other method is
// the repository's own.
type Repository[T eventsource.Aggregate] struct {
	*eventsource.Repository[T]
	tracer *tracerSource
	in     instruments
	system attribute.KeyValue
}

// NewRepository returns r instrumented. Build r on an instrumented store
// (eventsource.WithStore(esotelStore)) for append spans and retry counts.
func NewRepository[T eventsource.Aggregate](r *eventsource.Repository[T], opts ...Option) (*Repository[T], error) {
	c := newConfig(opts)
	in, err := newInstruments(c.mp.Meter(ScopeName))
	if err != nil {
		return nil, err
	}
	if c.system == "" {
		c.system = systemOf(r.Store())
	}
	return &Repository[T]{Repository: r, tracer: c.tracer(), in: in, system: semconv.DBSystemNameKey.String(c.system)}, nil
}

func (r *Repository[T]) start(ctx context.Context, op, id string) (context.Context, trace.Span) {
	ctx, span := r.tracer.start(ctx, func() string { return "repository." + op }, internalKind...)
	if span.IsRecording() {
		span.SetAttributes(r.system, AggregateKey.String(id), StreamKey.String(r.StreamID(id)))
	}
	return ctx, span
}

func end(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Load is eventsource.Repository.Load in a span "repository.load".
func (r *Repository[T]) Load(ctx context.Context, id string) (T, error) {
	ctx, span := r.start(ctx, "load", id)
	agg, err := r.Repository.Load(ctx, id)
	end(span, err)
	return agg, err
}

// LoadVersion is eventsource.Repository.LoadVersion in a span
// "repository.load".
func (r *Repository[T]) LoadVersion(ctx context.Context, id string, version int64) (T, error) {
	ctx, span := r.start(ctx, "load", id)
	agg, err := r.Repository.LoadVersion(ctx, id, version)
	end(span, err)
	return agg, err
}

// Save is eventsource.Repository.Save in a span "repository.save".
func (r *Repository[T]) Save(ctx context.Context, events ...eventsource.Event) error {
	ctx, span := r.start(ctx, "save", aggregateOf(events))
	if span.IsRecording() {
		span.SetAttributes(EventCountKey.Int(len(events)))
	}
	err := r.Repository.Save(ctx, events...)
	end(span, err)
	return err
}

// SaveExpecting is eventsource.Repository.SaveExpecting in a span
// "repository.save", with the retries it made.
func (r *Repository[T]) SaveExpecting(ctx context.Context, expected eventsource.ExpectedVersion, events ...eventsource.Event) (int64, error) {
	ctx, span := r.start(ctx, "save", aggregateOf(events))
	if span.IsRecording() {
		span.SetAttributes(EventCountKey.Int(len(events)), ExpectedVersionKey.String(expected.String()))
	}
	ctx, cs := withConflictCounter(ctx)
	v, err := r.Repository.SaveExpecting(ctx, expected, events...)
	r.retried(ctx, span, cs, err)
	end(span, err)
	return v, err
}

// Apply is eventsource.Repository.Apply (load, handle, save, retry on a
// version conflict) in a span "repository.apply" named after the command's
// type, with the retries it made.
func (r *Repository[T]) Apply(ctx context.Context, cmd eventsource.Command) (int64, error) {
	var id string
	if cmd != nil {
		id = cmd.AggregateID()
	}
	ctx, span := r.start(ctx, "apply", id)
	if span.IsRecording() && cmd != nil {
		span.SetAttributes(CommandKey.String(fmt.Sprintf("%T", cmd)))
	}
	ctx, cs := withConflictCounter(ctx)
	v, err := r.Repository.Apply(ctx, cmd)
	r.retried(ctx, span, cs, err)
	if err == nil && span.IsRecording() {
		span.SetAttributes(VersionKey.Int64(v))
	}
	end(span, err)
	return v, err
}

// retried records the attempts made after conflicts: every conflict but a
// last one that ended the call.
func (r *Repository[T]) retried(ctx context.Context, span trace.Span, cs *conflicts, err error) {
	n := cs.n
	if n > 0 && isConflict(err) {
		n-- // the last attempt's conflict was not retried
	}
	if span.IsRecording() {
		span.SetAttributes(RetriesKey.Int(n))
	}
	if n > 0 {
		r.in.retries.Add(ctx, int64(n), metric.WithAttributes(r.system))
	}
}

func aggregateOf(events []eventsource.Event) string {
	for _, e := range events {
		if e != nil {
			return e.AggregateID()
		}
	}
	return ""
}

package esotel

import (
	"context"
	"iter"
	"maps"
	"reflect"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// Store is an instrumented eventsource.Store: spans for appends, stream
// reads and global-log reads, the metrics named in this package, and the
// trace context of each append written into its records' metadata
// (traceparent, tracestate) so that consumers can link to it. It holds
// only the Store methods: the wrapped store's optional capabilities
// (Notifier, HeadReader, SnapshotStore, …) are found through
// eventsource.As, which looks through Unwrap.
type Store struct {
	inner    eventsource.Store
	tracer   *tracerSource
	in       instruments
	prop     propagation.TextMapPropagator
	system   attribute.KeyValue
	category func(string) string
	limits   eventsource.Limits
	globals  bool // on the untouched global providers: see untouched
}

var _ eventsource.Store = (*Store)(nil)

// NewStore returns s instrumented. An error comes only from a meter
// provider that refuses the instruments.
func NewStore(s eventsource.Store, opts ...Option) (*Store, error) {
	c := newConfig(opts)
	in, err := newInstruments(c.mp.Meter(ScopeName))
	if err != nil {
		return nil, err
	}
	if c.system == "" {
		c.system = systemOf(s)
	}
	return &Store{inner: s, tracer: c.tracer(), in: in, prop: c.prop,
		system: semconv.DBSystemNameKey.String(c.system), category: c.category, limits: eventsource.LimitsOf(s), globals: c.onGlobals()}, nil
}

// Unwrap returns the store s instruments.
func (s *Store) Unwrap() eventsource.Store { return s.inner }

// Append implements eventsource.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventsource.ExpectedVersion, records []eventsource.Record) (eventsource.AppendResult, error) {
	if !s.globals || !untouched.Load() {
		tr := s.tracer.get()
		timed := s.in.appends.Enabled(ctx)
		if tr != nil || timed {
			return s.appendObserved(ctx, tr, timed, stream, expected, records)
		}
	}
	// Nothing records: the append as it is, in a small frame.
	res, err := s.inner.Append(ctx, stream, expected, records)
	if err != nil {
		countConflict(ctx, err)
	}
	return res, err
}

// appendObserved is Append with a tracer or metrics that record.
func (s *Store) appendObserved(ctx context.Context, tr trace.Tracer, timed bool, stream string, expected eventsource.ExpectedVersion, records []eventsource.Record) (eventsource.AppendResult, error) {
	cat := s.category(stream)
	span := noSpan
	if tr != nil {
		ctx, span = tr.Start(ctx, spanName("append", cat), clientKind...)
	}
	recording := span.IsRecording()
	if recording {
		span.SetAttributes(s.system, semconv.DBOperationName("append"), StreamKey.String(stream), CategoryKey.String(cat),
			ExpectedVersionKey.String(expected.String()), EventCountKey.Int(len(records)))
	}
	if span.SpanContext().IsValid() {
		records = s.inject(ctx, stream, expected, records)
	}
	var start time.Time
	if timed {
		start = time.Now()
	}
	res, err := s.inner.Append(ctx, stream, expected, records)
	conflict := err != nil && countConflict(ctx, err)
	if recording {
		switch {
		case err == nil:
			span.SetAttributes(PositionKey.Int64(int64(res.FirstPosition)), LastPositionKey.Int64(int64(res.LastPosition)),
				VersionKey.Int64(res.LastVersion))
		case conflict:
			span.SetAttributes(ConflictKey.Bool(true), semconv.ErrorTypeKey.String("conflict"))
			span.SetStatus(codes.Error, err.Error())
		default:
			span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
	if timed {
		s.recordAppend(ctx, cat, records, time.Since(start), err, conflict)
	}
	return res, err
}

// countConflict reports whether err is a version conflict, and counts it
// for the repository call (if any) that ctx belongs to.
func countConflict(ctx context.Context, err error) bool {
	if !isConflict(err) {
		return false
	}
	if cs := conflictCounter(ctx); cs != nil {
		cs.n++
	}
	return true
}

// recordAppend records an append's metrics.
func (s *Store) recordAppend(ctx context.Context, cat string, records []eventsource.Record, d time.Duration, err error, conflict bool) {
	base := []attribute.KeyValue{s.system, CategoryKey.String(cat)}
	op := append(base, semconv.DBOperationName("append"))
	if err != nil {
		op = append(op, semconv.ErrorTypeKey.String(errorType(err)))
	}
	s.in.duration.Record(ctx, d.Seconds(), metric.WithAttributes(op...))
	s.in.appends.Add(ctx, 1, metric.WithAttributes(append(base, ConflictKey.Bool(conflict))...))
	switch {
	case conflict:
		s.in.conflicts.Add(ctx, 1, metric.WithAttributes(base...))
	case err == nil:
		var n int64
		for i := range records {
			n += int64(len(records[i].Data))
			for k, v := range records[i].Metadata {
				n += int64(len(k) + len(v))
			}
		}
		set := metric.WithAttributes(base...)
		s.in.events.Add(ctx, int64(len(records)), set)
		s.in.bytes.Add(ctx, n, set)
	}
}

// inject returns records with the trace context of ctx in each one's
// metadata, copied, so the caller's records are not changed. A record that
// already carries a traceparent keeps it. Where the trace context would
// take an append the store accepts over the store's limits (metadata keys
// or bytes), the records go as they are.
func (s *Store) inject(ctx context.Context, stream string, expected eventsource.ExpectedVersion, records []eventsource.Record) []eventsource.Record {
	carrier := propagation.MapCarrier{}
	s.prop.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return records
	}
	out := make([]eventsource.Record, len(records))
	for i, r := range records {
		if _, ok := r.Metadata[TraceparentKey]; !ok {
			md := make(map[string]string, len(r.Metadata)+len(carrier))
			maps.Copy(md, r.Metadata)
			maps.Copy(md, carrier)
			r.Metadata = md
		}
		out[i] = r
	}
	if storekit.ValidateAppend(stream, expected, out, s.limits) != nil {
		return records // the store's own check gives the caller's error, or takes them
	}
	return out
}

// ReadStream implements eventsource.Store: one span for the read, ended
// when the iteration ends, with the number of records it yielded.
func (s *Store) ReadStream(ctx context.Context, stream string, from, to int64) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		cat := s.category(stream)
		ctx, span := s.tracer.start(ctx, func() string { return spanName("read_stream", cat) }, clientKind...)
		if span.IsRecording() {
			span.SetAttributes(s.system, semconv.DBOperationName("read_stream"), StreamKey.String(stream), CategoryKey.String(cat))
		}
		s.read(ctx, span, "read_stream", cat, s.inner.ReadStream(ctx, stream, from, to), yield)
	}
}

// ReadAll implements eventsource.Store: one span per read of the global
// log (a subscription's page), ended when the iteration ends.
func (s *Store) ReadAll(ctx context.Context, from uint64, filter eventsource.Filter) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		ctx, span := s.tracer.start(ctx, func() string { return "read_all" }, clientKind...)
		if span.IsRecording() {
			span.SetAttributes(s.system, semconv.DBOperationName("read_all"), PositionKey.Int64(int64(from)))
		}
		s.read(ctx, span, "read_all", "", s.inner.ReadAll(ctx, from, filter), yield)
	}
}

// read runs a read's iteration under span.
func (s *Store) read(ctx context.Context, span trace.Span, op, cat string, seq iter.Seq2[eventsource.Record, error], yield func(eventsource.Record, error) bool) {
	timed := s.in.duration.Enabled(ctx)
	var start time.Time
	if timed {
		start = time.Now()
	}
	var n int
	var last uint64
	var failed error
	for r, err := range seq {
		if err != nil {
			failed = err
		} else {
			n++
			last = r.Position
		}
		if !yield(r, err) {
			break
		}
	}
	if span.IsRecording() {
		span.SetAttributes(EventCountKey.Int(n))
		if last > 0 {
			span.SetAttributes(LastPositionKey.Int64(int64(last)))
		}
		if failed != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(errorType(failed)))
			span.RecordError(failed)
			span.SetStatus(codes.Error, failed.Error())
		}
	}
	span.End()
	if timed {
		attrs := []attribute.KeyValue{s.system, semconv.DBOperationName(op)}
		if cat != "" {
			attrs = append(attrs, CategoryKey.String(cat))
		}
		if failed != nil {
			attrs = append(attrs, semconv.ErrorTypeKey.String(errorType(failed)))
		}
		s.in.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attrs...))
	}
}

// spanName follows the database conventions: the operation, then its
// target (the stream category) when there is one.
func spanName(op, cat string) string {
	if cat == "" {
		return op
	}
	return op + " " + cat
}

func isConflict(err error) bool {
	return err != nil && errorType(err) == "conflict"
}

// systemName is db.system.name for a store of one of this project's
// packages, or "".
func systemName(s eventsource.Store) string {
	t := reflect.TypeOf(s)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pkg := t.PkgPath()
	if !strings.HasPrefix(pkg, "github.com/eventsource-go/eventsource/store/") {
		return ""
	}
	switch name := pkg[strings.LastIndexByte(pkg, '/')+1:]; name {
	case "postgres":
		return "postgresql"
	case "dynamodb":
		return "aws.dynamodb"
	default:
		return name
	}
}

// conflicts counts the version conflicts of the appends made with a
// context, for the repository's retries.
type conflicts struct{ n int }

type conflictsKey struct{}

func withConflictCounter(ctx context.Context) (context.Context, *conflicts) {
	c := &conflicts{}
	return context.WithValue(ctx, conflictsKey{}, c), c
}

func conflictCounter(ctx context.Context) *conflicts {
	c, _ := ctx.Value(conflictsKey{}).(*conflicts)
	return c
}

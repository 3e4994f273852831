package esotel

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsource-go/eventsource"
)

// ScopeName is the instrumentation scope of every tracer and meter here.
const ScopeName = "github.com/eventsource-go/eventsource/esotel"

// Attribute keys of this package (the semantic conventions' own keys,
// db.system.name, db.operation.name and error.type, are used where they
// apply).
const (
	StreamKey          = attribute.Key("eventsource.stream.id")
	CategoryKey        = attribute.Key("eventsource.stream.category")
	ExpectedVersionKey = attribute.Key("eventsource.expected_version")
	EventCountKey      = attribute.Key("eventsource.event.count")
	PositionKey        = attribute.Key("eventsource.position")
	LastPositionKey    = attribute.Key("eventsource.position.last")
	VersionKey         = attribute.Key("eventsource.stream.version")
	ConflictKey        = attribute.Key("eventsource.conflict")
	RetriesKey         = attribute.Key("eventsource.retries")
	AggregateKey       = attribute.Key("eventsource.aggregate.id")
	CommandKey         = attribute.Key("eventsource.command")
	ProjectionKey      = attribute.Key("eventsource.projection")
)

// Metric names, fixed: what varies (store, category, projection) is an
// attribute.
const (
	// MetricOperationDuration is the semantic conventions' database client
	// histogram, in seconds, with db.operation.name append, read_stream or
	// read_all and error.type on failures.
	MetricOperationDuration = "db.client.operation.duration"
	MetricAppends           = "eventsource.appends"                  // {append}, with eventsource.conflict
	MetricEventsAppended    = "eventsource.events.appended"          // {event}
	MetricBytesAppended     = "eventsource.bytes.appended"           // By: data and metadata
	MetricConflicts         = "eventsource.conflicts"                // {conflict}: appends refused on their expected version
	MetricRetries           = "eventsource.retries"                  // {retry}: a repository's attempts after a conflict
	MetricProjectionLag     = "eventsource.projection.lag"           // s: from an event's commit to its handling, histogram
	MetricProjectionBehind  = "eventsource.projection.lag.positions" // {position}: head minus checkpoint
	MetricProjectionFaults  = "eventsource.projection.faults"        // {fault}: 1 while the projection is faulted
	MetricProjectionParked  = "eventsource.projection.parked"        // {event}
	MetricProjectionSkipped = "eventsource.projection.skipped"       // {event}
	MetricProjectionHandled = "eventsource.projection.events"        // {event}: handled by a read model's Apply
)

// Metadata keys the W3C trace context travels in.
const (
	TraceparentKey = "traceparent"
	TracestateKey  = "tracestate"
)

// Option configures the instrumentation.
type Option func(*config)

type config struct {
	tp       trace.TracerProvider
	mp       metric.MeterProvider
	prop     propagation.TextMapPropagator
	system   string
	category func(stream string) string
}

// WithTracerProvider sets the tracer provider. By default spans go to the
// global provider (otel.SetTracerProvider), as it is at each call.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithMeterProvider sets the meter provider (otel.GetMeterProvider() by
// default).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithPropagator sets how trace context is written to and read from event
// metadata (W3C trace context by default).
func WithPropagator(p propagation.TextMapPropagator) Option { return func(c *config) { c.prop = p } }

// WithSystem sets db.system.name ("postgresql", "sqlite", …). By default
// it is found from the store's package: memory, sqlite, postgresql, mysql,
// aws.dynamodb, nats.
func WithSystem(name string) Option { return func(c *config) { c.system = name } }

// WithCategory sets how a stream ID maps to its category, a low-cardinality
// attribute of metrics and span names. By default it is the part before the
// first "-" ("account-42" is "account"), or "" when there is none.
func WithCategory(f func(stream string) string) Option { return func(c *config) { c.category = f } }

// Category is the default category of stream: the part before the first
// "-", or "".
func Category(stream string) string {
	if i := strings.IndexByte(stream, '-'); i > 0 {
		return stream[:i]
	}
	return ""
}

func newConfig(opts []Option) config {
	c := config{category: Category}
	for _, o := range opts {
		o(&c)
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.prop == nil {
		c.prop = propagation.TraceContext{}
	}
	return c
}

// defaultTracerProvider is OpenTelemetry's global provider as it is before
// a program sets one: it records nothing, and while it is the global one no
// span is started at all (a span that records nothing still costs
// allocations on every append).
var defaultTracerProvider = func() trace.TracerProvider {
	tp := otel.GetTracerProvider()
	if reflect.TypeOf(tp).String() == "*global.tracerProvider" {
		return tp
	}
	return nil
}()

// defaultMeterProvider is the global meter provider as it is before a
// program sets one.
var defaultMeterProvider = func() metric.MeterProvider {
	mp := otel.GetMeterProvider()
	if reflect.TypeOf(mp).String() == "*global.meterProvider" {
		return mp
	}
	return nil
}()

// untouched is set while the program has set neither global provider, so
// a decorator that uses them records nothing and can skip every check: one
// atomic load per call. A watcher, started by the first decorator made
// while both are the defaults, looks every watchEvery and clears it for
// good once either is set: tracing and metrics through the globals begin
// within that time of otel.SetTracerProvider or otel.SetMeterProvider.
var (
	untouched  atomic.Bool
	watchOnce  sync.Once
	watchEvery = 50 * time.Millisecond
)

func globalsUntouched() bool {
	return defaultTracerProvider != nil && otel.GetTracerProvider() == defaultTracerProvider &&
		defaultMeterProvider != nil && otel.GetMeterProvider() == defaultMeterProvider
}

// watchGlobals starts the watcher, once.
func watchGlobals() {
	watchOnce.Do(func() {
		if !globalsUntouched() {
			return
		}
		untouched.Store(true)
		go func() {
			t := time.NewTicker(watchEvery)
			defer t.Stop()
			for range t.C {
				if !globalsUntouched() {
					untouched.Store(false)
					return
				}
			}
		}()
	})
}

// onGlobals reports whether a decorator made with c uses both global
// providers while the program has set neither (then untouched tells it,
// call by call, whether anything can record), and starts the watcher.
func (c config) onGlobals() bool {
	if c.tp != nil || defaultMeterProvider == nil || c.mp != defaultMeterProvider {
		return false
	}
	watchGlobals()
	return untouched.Load()
}

// tracerSource gives the tracer of each call: the configured provider's,
// or the global provider's as it is at the time of the call.
type tracerSource struct {
	fixed trace.Tracer
	cache atomic.Pointer[tracerOf]
}

type tracerOf struct {
	tp trace.TracerProvider
	t  trace.Tracer
}

func (c config) tracer() *tracerSource {
	if c.tp != nil {
		return &tracerSource{fixed: c.tp.Tracer(ScopeName)}
	}
	return &tracerSource{}
}

// get returns the tracer, or nil while the global provider is the default.
// It is small enough to inline: it runs on every append.
func (s *tracerSource) get() trace.Tracer {
	if s.fixed != nil {
		return s.fixed
	}
	if tp := otel.GetTracerProvider(); tp != defaultTracerProvider {
		return s.from(tp)
	}
	return nil
}

// from returns the tracer of tp, cached.
func (s *tracerSource) from(tp trace.TracerProvider) trace.Tracer {
	if c := s.cache.Load(); c != nil && c.tp == tp {
		return c.t
	}
	t := tp.Tracer(ScopeName)
	s.cache.Store(&tracerOf{tp, t})
	return t
}

// noSpan is the span of a call that is not traced: it records nothing.
var noSpan = trace.SpanFromContext(context.Background())

// start starts a span named name() (built only when there is a tracer).
func (s *tracerSource) start(ctx context.Context, name func() string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	t := s.get()
	if t == nil {
		return ctx, noSpan
	}
	return t.Start(ctx, name(), opts...)
}

var (
	clientKind   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	internalKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	consumerKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
)

// instruments are the store's and repository's metrics.
type instruments struct {
	duration  metric.Float64Histogram
	appends   metric.Int64Counter
	events    metric.Int64Counter
	bytes     metric.Int64Counter
	conflicts metric.Int64Counter
	retries   metric.Int64Counter
}

// durationBuckets are the semantic conventions' advice for
// db.client.operation.duration.
var durationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

func newInstruments(m metric.Meter) (instruments, error) {
	var in instruments
	var errs [6]error
	in.duration, errs[0] = m.Float64Histogram(MetricOperationDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of event store operations."), metric.WithExplicitBucketBoundaries(durationBuckets...))
	in.appends, errs[1] = m.Int64Counter(MetricAppends, metric.WithUnit("{append}"), metric.WithDescription("Appends, by outcome."))
	in.events, errs[2] = m.Int64Counter(MetricEventsAppended, metric.WithUnit("{event}"), metric.WithDescription("Events appended."))
	in.bytes, errs[3] = m.Int64Counter(MetricBytesAppended, metric.WithUnit("By"), metric.WithDescription("Bytes of event data and metadata appended."))
	in.conflicts, errs[4] = m.Int64Counter(MetricConflicts, metric.WithUnit("{conflict}"), metric.WithDescription("Appends refused on their expected version."))
	in.retries, errs[5] = m.Int64Counter(MetricRetries, metric.WithUnit("{retry}"), metric.WithDescription("Repository attempts after a version conflict."))
	return in, errors.Join(errs[:]...)
}

// systemOf names the store's db.system.name from its package.
func systemOf(s eventsource.Store) string {
	for s != nil {
		if name := systemName(s); name != "" {
			return name
		}
		u, ok := s.(interface{ Unwrap() eventsource.Store })
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	return "other"
}

// errorType is error.type for err: the sentinel it matches, or "_OTHER".
func errorType(err error) string {
	var ce *eventsource.ConcurrencyError
	switch {
	case errors.As(err, &ce), errors.Is(err, eventsource.ErrConcurrency):
		return "conflict"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, eventsource.ErrNotFound):
		return "not_found"
	}
	return semconv.ErrorTypeOther.Value.AsString()
}

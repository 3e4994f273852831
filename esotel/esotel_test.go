package esotel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/esotel"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/store/storetest"
)

// telemetry is an SDK with an in-memory span recorder and a manual metric
// reader.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	opts   []esotel.Option
}

func newTelemetry(t testing.TB) *telemetry {
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() { _ = tel.tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	tel.opts = []esotel.Option{esotel.WithTracerProvider(tel.tp), esotel.WithMeterProvider(mp)}
	return tel
}

// ended returns the ended spans named name.
func (tel *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// metrics collects and returns the metrics by name.
func (tel *telemetry) metrics(t testing.TB) map[string]metricdata.Metrics {
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sum is the value of counter name for the data point with attribute
// want (or all points when want is empty).
func sum(t testing.TB, ms map[string]metricdata.Metrics, name string, want ...attribute.KeyValue) int64 {
	m, ok := ms[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is %T, not an int64 sum", name, m.Data)
	}
	var n int64
	for _, dp := range s.DataPoints {
		match := true
		for _, kv := range want {
			if v, ok := dp.Attributes.Value(kv.Key); !ok || v != kv.Value {
				match = false
			}
		}
		if match {
			n += dp.Value
		}
	}
	return n
}

func attr(kvs []attribute.KeyValue, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// The decorated memory store passes the conformance suite with tracing and
// metrics recording: the decorator changes nothing a store promises, and
// every capability is found through eventsource.As. The propagator writes
// nothing here, as the suite compares metadata read back with what it
// appended; TestTraceparentInMetadata covers the trace context.
func TestConformance(t *testing.T) {
	tel := newTelemetry(t)
	tel.opts = append(tel.opts, esotel.WithPropagator(propagation.NewCompositeTextMapPropagator()))
	storetest.Run(t, storetest.Features{
		Notify: true, Head: true, ListStreams: true, DeleteStream: true, CommitHook: true, Reservations: true,
		Snapshots: true, Lifecycle: true, Scavenge: true,
	}, func(t *testing.T) eventsource.Store {
		mem := memory.New(memory.WithBatchSize(100))
		t.Cleanup(func() { mem.Close() })
		s, err := esotel.NewStore(mem, tel.opts...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestAppendSpansAndMetrics(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	s, err := esotel.NewStore(memory.New(), tel.opts...)
	if err != nil {
		t.Fatal(err)
	}
	recs := []eventsource.Record{{Type: "Opened", Data: []byte(`{"owner":"ann"}`)}, {Type: "Deposited", Data: []byte(`{"amount":5}`), Metadata: map[string]string{"k": "v"}}}
	res, err := s.Append(ctx, "account-1", eventsource.NoStream, recs)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Append(ctx, "account-1", eventsource.NoStream, []eventsource.Record{{Type: "Opened"}})
	var ce *eventsource.ConcurrencyError
	if !errors.As(err, &ce) {
		t.Fatalf("second append = %v, want a conflict", err)
	}
	for range s.ReadStream(ctx, "account-1", 1, 0) {
	}
	for range s.ReadAll(ctx, 1, eventsource.Filter{}) {
	}

	spans := tel.ended("append account")
	if len(spans) != 2 {
		t.Fatalf("%d spans named %q, want 2 (all: %d)", len(spans), "append account", len(tel.spans.Ended()))
	}
	ok, conflict := spans[0].Attributes(), spans[1].Attributes()
	for key, want := range map[attribute.Key]attribute.Value{
		"db.system.name": attribute.StringValue("memory"), "db.operation.name": attribute.StringValue("append"),
		esotel.StreamKey: attribute.StringValue("account-1"), esotel.CategoryKey: attribute.StringValue("account"),
		esotel.ExpectedVersionKey: attribute.StringValue("no-stream"), esotel.EventCountKey: attribute.IntValue(2),
		esotel.PositionKey: attribute.Int64Value(int64(res.FirstPosition)), esotel.LastPositionKey: attribute.Int64Value(int64(res.LastPosition)),
		esotel.VersionKey: attribute.Int64Value(2),
	} {
		if got, _ := attr(ok, key); got != want {
			t.Errorf("append span: %s = %v, want %v", key, got.String(), want.String())
		}
	}
	if v, _ := attr(conflict, esotel.ConflictKey); !v.AsBool() || spans[1].Status().Code.String() != "Error" {
		t.Errorf("conflicting append's span: conflict %v, status %v", v.String(), spans[1].Status())
	}
	if n := len(tel.ended("read_stream account")) + len(tel.ended("read_all")); n != 2 {
		t.Errorf("%d read spans, want 2", n)
	}
	if v, _ := attr(tel.ended("read_stream account")[0].Attributes(), esotel.EventCountKey); v.AsInt64() != 2 {
		t.Errorf("read_stream span counts %d records, want 2", v.AsInt64())
	}

	ms := tel.metrics(t)
	cat := esotel.CategoryKey.String("account")
	if n := sum(t, ms, esotel.MetricAppends, cat, esotel.ConflictKey.Bool(false)); n != 1 {
		t.Errorf("%s{conflict=false} = %d, want 1", esotel.MetricAppends, n)
	}
	if n := sum(t, ms, esotel.MetricAppends, esotel.ConflictKey.Bool(true)); n != 1 {
		t.Errorf("%s{conflict=true} = %d, want 1", esotel.MetricAppends, n)
	}
	if n := sum(t, ms, esotel.MetricConflicts, cat); n != 1 {
		t.Errorf("%s = %d, want 1", esotel.MetricConflicts, n)
	}
	if n := sum(t, ms, esotel.MetricEventsAppended, cat); n != 2 {
		t.Errorf("%s = %d, want 2", esotel.MetricEventsAppended, n)
	}
	stored, err := eventsource.ReadStreamAll(ctx, s, "account-1")
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, r := range stored {
		want += int64(len(r.Data))
		for k, v := range r.Metadata {
			want += int64(len(k) + len(v))
		}
	}
	if n := sum(t, ms, esotel.MetricBytesAppended, cat); n != want || want < int64(len(recs[0].Data)+len(recs[1].Data)+2+55) {
		t.Errorf("%s = %d, want %d", esotel.MetricBytesAppended, n, want)
	}
	h, ok2 := ms[esotel.MetricOperationDuration].Data.(metricdata.Histogram[float64])
	if !ok2 {
		t.Fatalf("%s is not a float64 histogram", esotel.MetricOperationDuration)
	}
	ops := map[string]uint64{}
	for _, dp := range h.DataPoints {
		op, _ := dp.Attributes.Value("db.operation.name")
		ops[op.AsString()] += dp.Count
	}
	if ops["append"] != 2 || ops["read_stream"] != 1 || ops["read_all"] != 1 {
		t.Errorf("%s counts by operation %v, want append 2, read_stream 1, read_all 1", esotel.MetricOperationDuration, ops)
	}
}

// An append made inside a span stores that span's trace context in each
// record's metadata, without changing the caller's records.
func TestTraceparentInMetadata(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	s, err := esotel.NewStore(memory.New(), tel.opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tel.tp.Tracer("test").Start(ctx, "handle request")
	recs := []eventsource.Record{{Type: "A", Metadata: map[string]string{"user": "ann"}}, {Type: "B"}}
	if _, err := s.Append(ctx, "order-7", eventsource.Any, recs); err != nil {
		t.Fatal(err)
	}
	parent.End()
	if _, ok := recs[0].Metadata[esotel.TraceparentKey]; ok || recs[1].Metadata != nil {
		t.Fatalf("the caller's records were changed: %v", recs)
	}
	span := tel.ended("append order")[0]
	if span.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("append span's parent is %v, want the caller's span", span.Parent().SpanID())
	}
	h, err := eventsource.ReadStreamAll(context.Background(), s, "order-7")
	if err != nil || len(h) != 2 {
		t.Fatal(h, err)
	}
	for _, r := range h {
		sc := esotel.SpanContextOf(r)
		if sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() {
			t.Fatalf("record %d carries span %v/%v, want the append's %v/%v", r.Version, sc.TraceID(), sc.SpanID(), span.SpanContext().TraceID(), span.SpanContext().SpanID())
		}
	}
	if h[0].Metadata["user"] != "ann" {
		t.Fatalf("metadata %v lost the caller's key", h[0].Metadata)
	}
	// A record that brings its own traceparent keeps it.
	own := map[string]string{esotel.TraceparentKey: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	if _, err := s.Append(ctx, "order-8", eventsource.Any, []eventsource.Record{{Type: "A", Metadata: own}}); err != nil {
		t.Fatal(err)
	}
	h, _ = eventsource.ReadStreamAll(context.Background(), s, "order-8")
	if h[0].Metadata[esotel.TraceparentKey] != own[esotel.TraceparentKey] {
		t.Fatalf("traceparent %q, want the record's own", h[0].Metadata[esotel.TraceparentKey])
	}
	// A record whose metadata is at the store's key limit is stored as it
	// is: the trace context never makes an append fail.
	full := map[string]string{}
	for i := range eventsource.LimitsOf(s).MaxMetadataKeys {
		full[fmt.Sprint("k", i)] = "v"
	}
	if _, err := s.Append(ctx, "order-9", eventsource.Any, []eventsource.Record{{Type: "A", Metadata: full}}); err != nil {
		t.Fatalf("append at the metadata key limit: %v", err)
	}
	h, _ = eventsource.ReadStreamAll(context.Background(), s, "order-9")
	if _, ok := h[0].Metadata[esotel.TraceparentKey]; ok || len(h[0].Metadata) != len(full) {
		t.Fatalf("record at the key limit stored with %d keys", len(h[0].Metadata))
	}
}

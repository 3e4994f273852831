// Package esotel instruments eventsource with OpenTelemetry, as decorators:
// nothing in a store changes, and the program picks the SDK and exporter
// (this module needs only the OpenTelemetry API).
//
//	s, _ := esotel.NewStore(store)                 // spans, metrics, traceparent in metadata
//	repo, _ := esotel.NewRepository(eventsource.New(&Account{}, eventsource.WithStore(s)))
//	rm, _ := esotel.NewReadModel[*sql.Tx]("balances", Balances{})
//	cps, _ := esotel.NewCheckpoints[*sql.Tx](checkpoints)
//	p := projection.NewProjector("balances", s, cps, rm)
//	reg, _ := esotel.ObserveProjector(s, p)          // lag, faults, parked, skipped gauges
//
// Tracers and meters come from the global providers (otel.SetTracerProvider,
// otel.SetMeterProvider), as they are at each call, or from WithTracerProvider
// and WithMeterProvider. While a program has set no provider nothing is
// started or recorded, and a decorated append costs one atomic load more
// than a plain one (BENCHMARKS.md); tracing and metrics through the globals
// begin within 50 ms of otel.SetTracerProvider or otel.SetMeterProvider.
//
// # Trace context
//
// An append made with a span in its context, or traced on its own, writes
// the W3C trace context of its span into each record's metadata
// (traceparent, and tracestate when there is one), unless the record
// brings its own or the keys would take the append over the store's limits.
// A projector's batch span (NewReadModel) links to the append span of each
// event it applies, so a trace viewer goes from a handler to the command
// that caused it; SpanContextOf and TraceContext read the context back for
// other consumers.
//
// # Spans
//
//	append {category}             client   an append: db.system.name, db.operation.name=append,
//	                                       eventsource.stream.id, .stream.category, .expected_version,
//	                                       .event.count; then .position, .position.last and
//	                                       .stream.version, or .conflict=true and error.type=conflict
//	read_stream {category}        client   a stream read, ended with the iteration: .event.count
//	read_all                      client   a read of the global log (a subscription's page): .position
//	                                       (from), .event.count, .position.last
//	repository.load|save|apply    internal a repository call: eventsource.aggregate.id, .stream.id;
//	                                       apply: .command (the command's Go type), .retries
//	projection.commit             client   a projector's transaction: eventsource.projection
//	projection.apply {name}       consumer a read model's Apply of one batch, child of the commit:
//	                                       .event.count, .position, .position.last; links to the
//	                                       append spans of its events
//	projection.side_effects {name}         a read model's side effects
//
// Failed operations set the span status to error and error.type (conflict,
// not_found, canceled, timeout or _OTHER).
//
// # Metrics
//
// Names are fixed; what varies is an attribute (db.system.name,
// eventsource.stream.category, eventsource.projection), never part of a
// name.
//
//	db.client.operation.duration            histogram s         append, read_stream, read_all
//	                                                            (db.operation.name), error.type
//	eventsource.appends                     counter {append}    eventsource.conflict true/false
//	eventsource.events.appended             counter {event}
//	eventsource.bytes.appended              counter By          data, metadata keys and values
//	eventsource.conflicts                   counter {conflict}
//	eventsource.retries                     counter {retry}     a repository's attempts after a conflict
//	eventsource.projection.lag              histogram s         commit (RecordedAt) to handling, per event
//	eventsource.projection.events           counter {event}     events handled by a read model
//	eventsource.projection.commit.duration  histogram s         a projector's transaction
//	eventsource.projection.lag.positions    gauge {position}    head of the log minus the checkpoint
//	eventsource.projection.faults           gauge {fault}       1 while faulted
//	eventsource.projection.parked           gauge {event}
//	eventsource.projection.skipped          gauge {event}
//
// The gauges are ObserveProjector's. The duration buckets are the semantic
// conventions' advice (1 ms to 10 s).
package esotel

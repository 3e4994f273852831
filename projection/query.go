package projection

import (
	"context"
	"fmt"

	"github.com/eventsource-go/eventsource"
)

// Query folds part of the global log into a state, once, without saving
// anything: a report, a check, a one-off migration. Records of several
// streams are merged in global-position order, never by timestamp.
//
//	total, err := projection.NewQuery(projection.FromCategory(store, "account-"), int64(0)).
//		On("MoneyDeposited", func(sum int64, r eventsource.Record) (int64, error) { ... }).
//		Run(ctx)
type Query[S any] struct {
	src      Source
	state    S
	handlers map[string]func(S, eventsource.Record) (S, error)
	any      func(S, eventsource.Record) (S, error)
	ser      eventsource.Serializer
	events   func(S, eventsource.Event) (S, error)
	where    []Condition
}

// Source is the part of a store's log a query reads.
type Source struct {
	store  eventsource.Store
	filter eventsource.Filter
}

// FromStream reads one stream.
func FromStream(s eventsource.Store, stream string) Source {
	return Source{s, eventsource.Filter{Streams: []string{stream}}}
}

// FromStreams reads several streams, merged by global position.
func FromStreams(s eventsource.Store, streams ...string) Source {
	return Source{s, eventsource.Filter{Streams: streams}}
}

// FromCategory reads every stream whose ID starts with prefix.
func FromCategory(s eventsource.Store, prefix string) Source {
	return Source{s, eventsource.Filter{StreamPrefixes: []string{prefix}}}
}

// FromAll reads the whole log, narrowed by f.
func FromAll(s eventsource.Store, f eventsource.Filter) Source { return Source{s, f} }

// NewQuery returns a query over src starting from initial state.
func NewQuery[S any](src Source, initial S) *Query[S] {
	return &Query[S]{src: src, state: initial, handlers: map[string]func(S, eventsource.Record) (S, error){}}
}

// On handles records of one event type.
func (q *Query[S]) On(eventType string, h func(S, eventsource.Record) (S, error)) *Query[S] {
	q.handlers[eventType] = h
	q.src.filter.Types = append(q.src.filter.Types, eventType)
	return q
}

// OnAny handles every record no On handler took.
func (q *Query[S]) OnAny(h func(S, eventsource.Record) (S, error)) *Query[S] {
	q.any = h
	return q
}

// OnEvent handles every record no On handler took, decoded by ser. Records
// of types ser does not know fail the query with ErrUnknownEventType.
func (q *Query[S]) OnEvent(ser eventsource.Serializer, h func(S, eventsource.Event) (S, error)) *Query[S] {
	q.ser, q.events = ser, h
	return q
}

// Where adds conditions every handled record must meet.
func (q *Query[S]) Where(conds ...Condition) *Query[S] {
	q.where = append(q.where, conds...)
	return q
}

// Run reads to the end of the log as it is now and returns the state.
func (q *Query[S]) Run(ctx context.Context) (S, error) {
	state := q.state
	f := q.src.filter
	if q.any != nil || q.events != nil {
		f.Types = nil // the catch-all needs every type
	}
	if q.src.store == nil {
		return state, fmt.Errorf("%w: query without a store", eventsource.ErrInvalidConfig)
	}
	for r, err := range q.src.store.ReadAll(ctx, 0, f) {
		if err != nil {
			return state, err
		}
		if !matchAll(q.where, &r) {
			continue
		}
		if h, ok := q.handlers[r.Type]; ok {
			state, err = h(state, r)
		} else if q.any != nil {
			state, err = q.any(state, r)
		} else if q.events != nil {
			var e eventsource.Event
			if e, err = eventsource.DecodeRecord(ctx, q.ser, r); err == nil {
				state, err = q.events(state, e)
			}
		}
		if err != nil {
			return state, fmt.Errorf("projection: query at position %d (%s %q v%d): %w", r.Position, r.Type, r.StreamID, r.Version, err)
		}
	}
	return state, nil
}

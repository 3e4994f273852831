package eventsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
)

// Serializer turns events into records and back.
type Serializer interface {
	// Bind registers event types so that records of their type names can be
	// decoded.
	Bind(events ...Event) error
	// MarshalEvent encodes e into a record with Type, Codec and Data set.
	MarshalEvent(e Event) (Record, error)
	// UnmarshalEvent decodes a record into a new event of its bound type, as
	// a pointer (a type bound as UserCreated{} decodes to *UserCreated).
	UnmarshalEvent(r Record) (Event, error)
}

// Codec encodes values to bytes and back. Its name is stored with each record
// it writes, so a store can hold records written by several codecs.
type Codec interface {
	Name() string
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// ContextSerializer is a Serializer whose encoding may do I/O (for example
// fetch an encryption key), so it takes a context. Repository uses these
// methods when its serializer has them; Registry implements it.
type ContextSerializer interface {
	Serializer
	MarshalEventContext(ctx context.Context, e Event) (Record, error)
	UnmarshalEventContext(ctx context.Context, r Record) (Event, error)
}

// ContextCodec is a Codec whose encoding may do I/O, so it takes a context
// (the encrypting codec of package encryption fetches keys). Registry calls
// these methods when a codec has them; a codec's plain Marshal and Unmarshal
// should call them with context.Background().
type ContextCodec interface {
	Codec
	MarshalContext(ctx context.Context, v any) ([]byte, error)
	UnmarshalContext(ctx context.Context, data []byte, v any) error
}

// Registry is the Serializer: it maps event type names to Go types and to
// the codec that encodes them. The zero value is not usable; call
// NewRegistry. A Registry is safe for concurrent use.
type Registry struct {
	mu     sync.RWMutex
	codec  Codec
	codecs map[string]Codec
	types  map[string]binding
	names  map[reflect.Type]string

	steps   map[upcastKey]Upcaster // schema evolution (schema.go)
	current map[string]int         // a type's schema version, when above 1
	feeds   map[string][]string    // type → stored names whose steps lead to it
}

type binding struct {
	typ   reflect.Type // the bound type, not a pointer
	codec Codec
	zero  func() Event // returns a pointer to a new value
}

// NewRegistry returns a registry whose Bind uses codec (JSON when nil).
// Further codecs that stored records may name can be added with AddCodec.
func NewRegistry(codec Codec) *Registry {
	if codec == nil {
		codec = jsonCodec{}
	}
	return &Registry{
		codec:  codec,
		codecs: map[string]Codec{codec.Name(): codec},
		types:  map[string]binding{},
		names:  map[reflect.Type]string{},
	}
}

// NewJSONSerializer returns a registry using the JSON codec, bound to events.
func NewJSONSerializer(events ...Event) (*Registry, error) {
	r := NewRegistry(nil)
	return r, r.Bind(events...)
}

// AddCodec makes records written by c decodable, for types bound with
// another codec (for example after moving from gob to JSON).
func (r *Registry) AddCodec(c Codec) error {
	if c == nil || c.Name() == "" {
		return fmt.Errorf("%w: nil or unnamed codec", ErrInvalidConfig)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.codecs[c.Name()] = c
	return nil
}

// Bind registers the types of events under their type names (see
// EventType), encoded with the registry's codec. Binding a type again is a
// no-op; two Go types claiming one name is ErrDuplicateType.
func (r *Registry) Bind(events ...Event) error { return r.BindWith(r.codec, events...) }

// BindWith is Bind with a codec of the caller's choice for these types.
func (r *Registry) BindWith(c Codec, events ...Event) error {
	for _, e := range events {
		if e == nil {
			return fmt.Errorf("%w: Bind of a nil event", ErrInvalidEvent)
		}
		t := reflect.TypeOf(e)
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if !reflect.PointerTo(t).Implements(reflect.TypeFor[Event]()) {
			return fmt.Errorf("%w: *%s does not implement Event", ErrInvalidEvent, t)
		}
		name := EventType(e)
		zero := func() Event { return reflect.New(t).Interface().(Event) }
		if err := r.Register(name, c, zero); err != nil {
			return err
		}
	}
	return nil
}

// Register binds an event type name to a constructor of new values (which
// may set defaults that decoding leaves in place) and the codec that encodes
// them. zero must return a pointer.
func (r *Registry) Register(name string, c Codec, zero func() Event) error {
	if name == "" || len(name) > MaxTypeLength || !validText(name) {
		return fmt.Errorf("%w: type name %q", ErrInvalidEvent, name)
	}
	if c == nil || c.Name() == "" || zero == nil {
		return fmt.Errorf("%w: Register %q needs a named codec and a constructor", ErrInvalidConfig, name)
	}
	sample := zero()
	st := reflect.TypeOf(sample)
	if sample == nil || st.Kind() != reflect.Pointer {
		return fmt.Errorf("%w: constructor of %q must return a pointer", ErrInvalidConfig, name)
	}
	t := st.Elem()
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.types[name]; ok && b.typ != t {
		return fmt.Errorf("%w: %q is bound to %s, not %s", ErrDuplicateType, name, b.typ, t)
	}
	if old, ok := r.names[t]; ok && old != name {
		return fmt.Errorf("%w: %s is bound as %q, not %q", ErrDuplicateType, t, old, name)
	}
	if sv, ok := sample.(SchemaVersioner); ok && sv.SchemaVersion() > 1 {
		if r.current == nil {
			r.steps, r.current = map[upcastKey]Upcaster{}, map[string]int{}
		}
		r.current[name] = max(r.current[name], sv.SchemaVersion())
	}
	r.types[name] = binding{typ: t, codec: c, zero: zero}
	r.names[t] = name
	r.codecs[c.Name()] = c
	return nil
}

// Types returns the bound type names, sorted.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.types))
	for n := range r.types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// MarshalEvent implements Serializer: MarshalEventContext with
// context.Background().
func (r *Registry) MarshalEvent(e Event) (Record, error) {
	return r.MarshalEventContext(context.Background(), e)
}

// MarshalEventContext implements ContextSerializer. The event's type must be
// bound. A codec that implements ContextCodec is given ctx.
func (r *Registry) MarshalEventContext(ctx context.Context, e Event) (Record, error) {
	if e == nil {
		return Record{}, fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	if v := reflect.ValueOf(e); v.Kind() == reflect.Pointer && v.IsNil() {
		return Record{}, fmt.Errorf("%w: nil %T", ErrInvalidEvent, e)
	}
	name := EventType(e)
	r.mu.RLock()
	b, ok := r.types[name]
	schema := r.currentVersion(name)
	r.mu.RUnlock()
	if !ok {
		return Record{}, &UnknownEventTypeError{Type: name}
	}
	var data []byte
	var err error
	if cc, ok := b.codec.(ContextCodec); ok {
		data, err = cc.MarshalContext(ctx, e)
	} else {
		data, err = b.codec.Marshal(e)
	}
	if err != nil {
		if passThrough(ctx, err) {
			return Record{}, fmt.Errorf("eventsource: encode %s: %w", name, err)
		}
		return Record{}, fmt.Errorf("%w: encode %s: %w", ErrInvalidEvent, name, err)
	}
	return Record{Type: name, Codec: codecWithVersion(b.codec.Name(), schema), Data: data}, nil
}

// UnmarshalEvent implements Serializer: UnmarshalEventContext with
// context.Background().
func (r *Registry) UnmarshalEvent(rec Record) (Event, error) {
	return r.UnmarshalEventContext(context.Background(), rec)
}

// UnmarshalEventContext implements ContextSerializer. The event's Model, when
// it embeds one, reports the record's version and time (see DecodeRecord). A
// type that is not
// bound is an *UnknownEventTypeError; bytes the codec rejects are a
// *DecodeError. A codec error matching ErrShredded, or one after ctx ended,
// is returned wrapped as it is, not as corrupt data.
func (r *Registry) UnmarshalEventContext(ctx context.Context, rec Record) (Event, error) {
	codecName, schema := splitCodec(rec.Codec)
	r.mu.RLock()
	_, upcasts := r.steps[upcastKey{rec.Type, schema}]
	current := r.currentVersion(rec.Type)
	b, ok := r.types[rec.Type]
	c := b.codec
	if codecName != "" && (!ok || codecName != c.Name()) {
		var known bool
		c, known = r.codecs[codecName]
		if !known && (ok || upcasts) {
			r.mu.RUnlock()
			return nil, &UnknownEventTypeError{Type: rec.Type, Codec: codecName}
		}
	}
	if c == nil {
		c = r.codec // a record that names no codec, of a type known only by its upcasters
	}
	r.mu.RUnlock()
	typ, data, redacted := rec.Type, rec.Data, false
	switch {
	case upcasts:
		var err error
		if typ, data, c, redacted, err = r.upcast(ctx, rec, c, schema); err != nil {
			if passThrough(ctx, err) {
				return nil, fmt.Errorf("eventsource: decode %s event at %q version %d: %w", rec.Type, rec.StreamID, rec.Version, err)
			}
			return nil, err
		}
		r.mu.RLock()
		b, ok = r.types[typ]
		r.mu.RUnlock()
	case ok && schema != current:
		return nil, &SchemaError{Type: rec.Type, Stream: rec.StreamID, Version: rec.Version, Position: rec.Position, Schema: schema, Current: current}
	}
	if !ok {
		return nil, &UnknownEventTypeError{Type: typ}
	}
	e := b.zero()
	var err error
	switch cc, isCC := c.(ContextCodec); {
	case redacted:
	case isCC && !upcasts:
		err = cc.UnmarshalContext(ctx, data, e)
	default:
		err = c.Unmarshal(data, e)
	}
	if err != nil {
		if passThrough(ctx, err) {
			return nil, fmt.Errorf("eventsource: decode %s event at %q version %d: %w", rec.Type, rec.StreamID, rec.Version, err)
		}
		return nil, &DecodeError{Stream: rec.StreamID, Version: rec.Version, Type: typ, Err: err}
	}
	fromRecord(e, rec)
	return e, nil
}

// DecodeRecord decodes rec with s (through its context variant when it has
// one). An event that embeds Model reports the record's version, and the
// time the store recorded it when the event had none: what every read path
// that decodes (Load, queries, projections) gives its handlers.
func DecodeRecord(ctx context.Context, s Serializer, rec Record) (Event, error) {
	var e Event
	var err error
	if cs, ok := s.(ContextSerializer); ok {
		e, err = cs.UnmarshalEventContext(ctx, rec)
	} else {
		e, err = s.UnmarshalEvent(rec)
	}
	if err != nil {
		return nil, err
	}
	fromRecord(e, rec)
	return e, nil
}

// passThrough reports a codec error that says nothing about the bytes: the
// data was shredded, or the context ended while a key was fetched.
func passThrough(ctx context.Context, err error) bool {
	return errors.Is(err, ErrShredded) || (ctx.Err() != nil && errors.Is(err, ctx.Err()))
}

// jsonCodec is the default codec; package codec/jsoncodec has a configurable
// one that writes the same bytes.
type jsonCodec struct{}

func (jsonCodec) Name() string                       { return "json" }
func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

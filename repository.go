package eventsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"time"
)

// Repository loads and saves aggregates of one type T (a pointer to the
// user's struct). Build it with New; it is safe for concurrent use.
type Repository[T Aggregate] struct {
	typ    reflect.Type // the struct type T points to
	store  Store
	ser    Serializer
	log    *slog.Logger
	prefix string
	retry  RetryPolicy
	err    error // configuration error, returned by every call
}

// Option configures a Repository.
type Option func(*config)

type config struct {
	store  Store
	ser    Serializer
	log    *slog.Logger
	prefix string
	retry  RetryPolicy
	err    error
}

// WithStore sets the store events are kept in. Required.
func WithStore(s Store) Option {
	return func(c *config) {
		if s == nil {
			c.err = fmt.Errorf("%w: WithStore(nil)", ErrInvalidConfig)
		}
		c.store = s
	}
}

// WithSerializer sets how events are encoded. The default is a Registry with
// the JSON codec.
func WithSerializer(s Serializer) Option {
	return func(c *config) {
		if s == nil {
			c.err = fmt.Errorf("%w: WithSerializer(nil)", ErrInvalidConfig)
		}
		c.ser = s
	}
}

// WithLogger sets a logger for retries and failures. Silent by default.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithStreamPrefix names each aggregate's stream prefix+ID (for example
// "user-"), so the global log can be filtered by category.
func WithStreamPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithRetry sets how Apply retries after a concurrency conflict.
func WithRetry(p RetryPolicy) Option { return func(c *config) { c.retry = p } }

// RetryPolicy bounds Apply's retries on ErrConcurrency. Each retry reloads
// the aggregate and runs the command again.
type RetryPolicy struct {
	Attempts   int           // total attempts including the first; 1 disables retries
	Backoff    time.Duration // wait before the second attempt; doubles each time, with jitter
	MaxBackoff time.Duration // upper bound of one wait
}

// DefaultRetry is the policy Apply uses unless WithRetry says otherwise.
var DefaultRetry = RetryPolicy{Attempts: 5, Backoff: 2 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}

func (p RetryPolicy) wait(attempt int) time.Duration {
	d := p.Backoff << (attempt - 1)
	if d <= 0 || (p.MaxBackoff > 0 && d > p.MaxBackoff) {
		d = p.MaxBackoff
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// New returns a repository for aggregates of prototype's type, which must be
// a non-nil pointer to a struct: New(&User{}, WithStore(s)). Configuration
// errors are reported by every method as ErrInvalidConfig.
func New[T Aggregate](prototype T, opts ...Option) *Repository[T] {
	c := config{retry: DefaultRetry}
	for _, o := range opts {
		o(&c)
	}
	r := &Repository[T]{store: c.store, ser: c.ser, log: c.log, prefix: c.prefix, retry: c.retry, err: c.err}
	t := reflect.TypeOf(prototype)
	switch {
	case r.err != nil:
	case t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct:
		r.err = fmt.Errorf("%w: prototype must be a pointer to a struct, got %T", ErrInvalidConfig, prototype)
	case r.store == nil:
		r.err = fmt.Errorf("%w: no store (use WithStore)", ErrInvalidConfig)
	default:
		r.typ = t.Elem()
	}
	if r.ser == nil {
		r.ser = NewRegistry(nil)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.retry.Attempts < 1 {
		r.retry.Attempts = 1
	}
	return r
}

// Serializer returns the repository's serializer.
func (r *Repository[T]) Serializer() Serializer { return r.ser }

// Store returns the repository's store.
func (r *Repository[T]) Store() Store { return r.store }

// StreamID returns the stream that holds aggregate id's events.
func (r *Repository[T]) StreamID(id string) string { return r.prefix + id }

// Bind registers event types with the serializer. Loading a record whose type
// is not bound fails with ErrUnknownEventType.
func (r *Repository[T]) Bind(events ...Event) error { return r.ser.Bind(events...) }

// New returns a new, empty aggregate.
func (r *Repository[T]) New() T {
	if r.typ == nil {
		var zero T
		return zero
	}
	return reflect.New(r.typ).Interface().(T)
}

// Load folds all events of aggregate id into a new aggregate. An aggregate
// without events is ErrNotFound.
func (r *Repository[T]) Load(ctx context.Context, id string) (T, error) {
	agg, _, err := r.load(ctx, id, 0)
	return agg, err
}

// LoadVersion is Load stopping at version (the aggregate as it was then).
func (r *Repository[T]) LoadVersion(ctx context.Context, id string, version int64) (T, error) {
	if version < 1 {
		var zero T
		return zero, fmt.Errorf("%w: aggregate %q at version %d", ErrNotFound, id, version)
	}
	agg, _, err := r.load(ctx, id, version)
	return agg, err
}

func (r *Repository[T]) load(ctx context.Context, id string, to int64) (T, int64, error) {
	var zero T
	if r.err != nil {
		return zero, 0, r.err
	}
	stream := r.StreamID(id)
	if err := ValidateStreamID(stream); err != nil {
		return zero, 0, err
	}
	agg := r.New()
	var version int64
	for rec, err := range r.store.ReadStream(ctx, stream, 1, to) {
		if err != nil {
			return zero, version, err
		}
		if rec.Version != version+1 {
			return zero, version, fmt.Errorf("%w: stream %q: version %d follows %d", ErrCorruptData, stream, rec.Version, version)
		}
		e, err := r.unmarshal(ctx, rec)
		if err != nil {
			return zero, version, fmt.Errorf("load %q: %w", stream, err)
		}
		if m := modelOf(e); m != nil && m.Version == 0 {
			m.Version = rec.Version
		}
		if err := agg.On(e); err != nil {
			return zero, version, fmt.Errorf("eventsource: %q version %d: On(%s): %w", stream, rec.Version, rec.Type, err)
		}
		version = rec.Version
	}
	if version == 0 {
		return zero, 0, fmt.Errorf("%w: aggregate %q", ErrNotFound, id)
	}
	if rt, ok := any(agg).(rooted); ok {
		root := rt.root()
		root.id, root.loaded, root.changes = id, version, nil
	}
	return agg, version, nil
}

// History returns the stored records of aggregate id, in version order.
func (r *Repository[T]) History(ctx context.Context, id string) (History, error) {
	if r.err != nil {
		return nil, r.err
	}
	h, err := ReadStreamAll(ctx, r.store, r.StreamID(id))
	if err == nil && len(h) == 0 {
		err = fmt.Errorf("%w: aggregate %q", ErrNotFound, id)
	}
	return h, err
}

// Save appends events of one aggregate in one atomic append. The expected
// version is the first event's version minus one; when the first event's
// version is zero the events are appended at the end of the stream with no
// check (Any), and their versions are filled in. Events that embed Model and
// are passed as pointers get zero Version and At filled in.
func (r *Repository[T]) Save(ctx context.Context, events ...Event) error {
	if r.err != nil {
		return r.err
	}
	if len(events) == 0 {
		return ErrNoEventsProduced
	}
	if events[0] == nil {
		return fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	id := events[0].AggregateID()
	if v := events[0].EventVersion(); v > 0 {
		_, err := r.save(ctx, id, v-1, Exact(v-1), events)
		return err
	}
	_, err := r.save(ctx, id, 0, Any, events)
	return err
}

// save checks and completes events (IDs, versions, times), encodes them and
// appends them. base is the version the events follow.
func (r *Repository[T]) save(ctx context.Context, id string, base int64, expected ExpectedVersion, events []Event) (int64, error) {
	if id == "" {
		return 0, fmt.Errorf("%w: event without aggregate ID", ErrInvalidEvent)
	}
	stream := r.StreamID(id)
	md := MetadataFrom(ctx)
	now := time.Now().UTC()
	records := make([]Record, len(events))
	for i, e := range events {
		if e == nil || (reflect.ValueOf(e).Kind() == reflect.Pointer && reflect.ValueOf(e).IsNil()) {
			return 0, fmt.Errorf("%w: event %d of %q is nil", ErrInvalidEvent, i, stream)
		}
		if m := modelOf(e); m != nil {
			if m.ID == "" {
				m.ID = id
			}
			if m.Version == 0 && expected != Any {
				m.Version = base + int64(i) + 1
			}
			if m.At.IsZero() {
				m.At = now
			}
		}
		if got := e.AggregateID(); got != id {
			return 0, fmt.Errorf("%w: event %d belongs to %q, saving %q", ErrInvalidEvent, i, got, id)
		}
		if expected != Any {
			if got, want := e.EventVersion(), base+int64(i)+1; got != want {
				return 0, fmt.Errorf("%w: event %d of %q has version %d, want %d", ErrInvalidEvent, i, stream, got, want)
			}
		}
		rec, err := r.marshal(ctx, e)
		if err != nil {
			return 0, err
		}
		rec.StreamID = stream
		rec.Metadata = md
		records[i] = rec
	}
	res, err := r.store.Append(ctx, stream, expected, records)
	if err != nil {
		return 0, err
	}
	if expected == Any {
		for i, e := range events {
			if m := modelOf(e); m != nil {
				m.Version = res.FirstVersion + int64(i)
			}
		}
	}
	return res.LastVersion, nil
}

// marshal encodes e with the serializer's context variant when it has one.
func (r *Repository[T]) marshal(ctx context.Context, e Event) (Record, error) {
	if cs, ok := r.ser.(ContextSerializer); ok {
		return cs.MarshalEventContext(ctx, e)
	}
	return r.ser.MarshalEvent(e)
}

// unmarshal decodes rec with the serializer's context variant when it has one.
func (r *Repository[T]) unmarshal(ctx context.Context, rec Record) (Event, error) {
	if cs, ok := r.ser.(ContextSerializer); ok {
		return cs.UnmarshalEventContext(ctx, rec)
	}
	return r.ser.UnmarshalEvent(rec)
}

// Apply runs a command: it loads the aggregate (a new one if it has no
// events), calls its Apply method (the aggregate must implement
// CommandHandler), and saves the events it returns, expecting the version it
// loaded. On ErrConcurrency it reloads and retries as the RetryPolicy allows.
// It returns the aggregate's new version. A handler that returns no events
// gives ErrNoEventsProduced and the current version; a handler error is
// returned wrapped, and nothing is saved.
func (r *Repository[T]) Apply(ctx context.Context, cmd Command) (int64, error) {
	if r.err != nil {
		return 0, r.err
	}
	if cmd == nil {
		return 0, fmt.Errorf("%w: nil command", ErrInvalidEvent)
	}
	id := cmd.AggregateID()
	if id == "" {
		return 0, fmt.Errorf("%w: %T has no aggregate ID", ErrInvalidEvent, cmd)
	}
	for attempt := 1; ; attempt++ {
		agg, version, err := r.load(ctx, id, 0)
		if errors.Is(err, ErrNotFound) {
			agg, err = r.New(), nil
		}
		if err != nil {
			return 0, err
		}
		h, ok := any(agg).(CommandHandler)
		if !ok {
			return 0, fmt.Errorf("%w: %T", ErrNoCommandHandler, agg)
		}
		events, err := h.Apply(ctx, cmd)
		if err != nil {
			return version, fmt.Errorf("eventsource: %T on %q: %w", cmd, id, err)
		}
		if len(events) == 0 {
			return version, ErrNoEventsProduced
		}
		v, err := r.save(ctx, id, version, Exact(version), events)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, ErrConcurrency) || attempt >= r.retry.Attempts {
			return version, err
		}
		d := r.retry.wait(attempt)
		r.log.DebugContext(ctx, "eventsource: retrying command after conflict",
			slog.String("stream", r.StreamID(id)), slog.Int("attempt", attempt), slog.Duration("wait", d))
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return version, ctx.Err()
			case <-t.C:
			}
		}
	}
}

package eventsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync/atomic"
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
	policy RetryPolicy
	snap   *SnapshotPolicy // nil: no snapshots
	err    error           // configuration error, returned by every call

	snapshotFallbacks atomic.Int64 // loads that found a snapshot they could not use
}

// Option configures a Repository.
type Option func(*config)

type config struct {
	store     Store
	ser       Serializer
	log       *slog.Logger
	prefix    string
	retry     RetryPolicy
	snapshots *SnapshotPolicy
	err       error
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

// WithRetry sets how Apply retries after a concurrency conflict
// (DefaultRetry unless set; NoRetry disables retries).
func WithRetry(p RetryPolicy) Option { return func(c *config) { c.retry = p } }

// RetryPolicy bounds the retries of Apply (and of SaveExpecting with Any or
// StreamExists) after a concurrency conflict. Each retry reloads the
// aggregate and runs the command again, after a jittered wait that doubles
// from Backoff up to MaxBackoff. Retries go on while the context allows and
// neither bound below is reached.
type RetryPolicy struct {
	// Attempts caps the attempts, the first included: 1 disables retries,
	// 0 or less sets no cap (MaxElapsed and the context bound them).
	Attempts int
	// MaxElapsed is the time after the first attempt when no further
	// attempt starts; 0 or less sets no bound but the context.
	MaxElapsed time.Duration
	Backoff    time.Duration // wait before the second attempt; doubles each time, with jitter
	MaxBackoff time.Duration // upper bound of one wait
}

// DefaultRetry is the policy Apply uses unless WithRetry says otherwise: no
// cap on attempts, none started after a minute, waits of 1 to 100 ms with
// jitter. Many writers contending for one aggregate all get through.
var DefaultRetry = RetryPolicy{MaxElapsed: time.Minute, Backoff: time.Millisecond, MaxBackoff: 100 * time.Millisecond}

// NoRetry makes Apply return the first concurrency conflict.
var NoRetry = RetryPolicy{Attempts: 1}

func (p RetryPolicy) wait(attempt int) time.Duration {
	d := p.Backoff << min(attempt-1, 30)
	if d <= 0 || (p.MaxBackoff > 0 && d > p.MaxBackoff) {
		d = p.MaxBackoff
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// again reports whether another attempt may start after attempt, which began
// the run at start.
func (p RetryPolicy) again(attempt int, start time.Time) bool {
	if p.Attempts > 0 && attempt >= p.Attempts {
		return false
	}
	return p.MaxElapsed <= 0 || time.Since(start) < p.MaxElapsed
}

// retry calls try until it reports no conflict to retry, or the policy or
// ctx ends the run.
func (r *Repository[T]) retry(ctx context.Context, stream string, try func() (v int64, conflict bool, err error)) (int64, error) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		v, conflict, err := try()
		if !conflict || !r.policy.again(attempt, start) {
			return v, err
		}
		d := r.policy.wait(attempt)
		r.log.DebugContext(ctx, "eventsource: retrying after conflict",
			slog.String("stream", stream), slog.Int("attempt", attempt), slog.Duration("wait", d))
		if err := sleep(ctx, d); err != nil {
			return v, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// New returns a repository for aggregates of prototype's type, which must be
// a non-nil pointer to a struct: New(&User{}, WithStore(s)). Configuration
// errors are reported by every method as ErrInvalidConfig.
func New[T Aggregate](prototype T, opts ...Option) *Repository[T] {
	c := config{retry: DefaultRetry}
	for _, o := range opts {
		o(&c)
	}
	r := &Repository[T]{store: c.store, ser: c.ser, log: c.log, prefix: c.prefix, policy: c.retry, snap: c.snapshots, err: c.err}
	t := reflect.TypeOf(prototype)
	switch {
	case r.err != nil:
	case t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct:
		r.err = fmt.Errorf("%w: prototype must be a pointer to a struct, got %T", ErrInvalidConfig, prototype)
	case r.store == nil:
		r.err = fmt.Errorf("%w: no store (use WithStore)", ErrInvalidConfig)
	case r.snap != nil && r.snapshotter() == nil:
		r.err = fmt.Errorf("%w: WithSnapshots, but %T does not implement SnapshotStore", ErrInvalidConfig, r.store)
	default:
		r.typ = t.Elem()
	}
	if r.ser == nil {
		r.ser = NewRegistry(nil)
	}
	if r.snap != nil && r.snap.Codec == nil {
		// Snapshots of encrypted events are encrypted too, so shredding a
		// subject takes its snapshots with it.
		if reg, ok := r.ser.(*Registry); ok {
			if _, encrypting := reg.codec.(OpenCodec); encrypting {
				p := *r.snap
				p.Codec = reg.codec
				r.snap = &p
			}
		}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
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
	agg, version, _, err := r.loadAt(ctx, id, to)
	return agg, version, err
}

// loadAt is load, also returning the global position of the last event
// folded (the snapshot's, when no event follows it).
func (r *Repository[T]) loadAt(ctx context.Context, id string, to int64) (T, int64, uint64, error) {
	var zero T
	if r.err != nil {
		return zero, 0, 0, r.err
	}
	stream := r.StreamID(id)
	if err := ValidateStreamID(stream); err != nil {
		return zero, 0, 0, err
	}
	agg, version, position, stale := r.fromSnapshot(ctx, stream, to)
	from := version
	if version == 0 {
		agg = r.New()
	}
	first := true
	for rec, err := range r.store.ReadStream(ctx, stream, version+1, to) {
		if err != nil {
			return zero, version, 0, err
		}
		// The first record may come after a gap: the stream was truncated
		// (StreamLifecycle), and the aggregate folds what is left.
		if rec.Version != version+1 && !(first && rec.Version > version) {
			return zero, version, 0, fmt.Errorf("%w: stream %q: version %d follows %d", ErrCorruptData, stream, rec.Version, version)
		}
		e, err := r.unmarshal(ctx, rec)
		if err != nil {
			return zero, version, 0, fmt.Errorf("eventsource: load %q: %w", stream, err)
		}
		if err := agg.On(e); err != nil {
			return zero, version, 0, fmt.Errorf("eventsource: %q version %d: On(%s): %w", stream, rec.Version, rec.Type, err)
		}
		version, position, first = rec.Version, rec.Position, false
	}
	if version == 0 {
		return zero, 0, 0, fmt.Errorf("%w: aggregate %q", ErrNotFound, id)
	}
	switch {
	case to != 0:
	case stale: // the snapshot of another schema was not used
		r.writeSnapshot(ctx, stream, version, position, agg) // replaces one of another schema
	case r.behind(from, version):
		// Events were saved without the state at hand (Save, SaveExpecting),
		// or a snapshot failed: the load has the state, so it takes the
		// snapshot the policy missed, for one write.
		r.writeSnapshot(ctx, stream, version, position, agg)
	}
	if rt, ok := any(agg).(rooted); ok {
		root := rt.root()
		root.id, root.loaded, root.changes = id, version, nil
	}
	return agg, version, position, nil
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

// Save appends events of one aggregate in one atomic append, checking the
// stream is where the events say: the expected version is the first event's
// version minus one. A first event at version 0 (a Model left zero) starts a
// new aggregate: the stream must not exist yet (NoStream). Events that embed
// Model and are passed as pointers get a zero ID, Version and At filled in
// (versions expected+1, expected+2, …); any other event must carry its
// version. A stream that is not at the expected version is a
// *ConcurrencyError and nothing is saved. To append at the end of a stream
// whatever its version, say so with SaveExpecting(ctx, Any, events...).
func (r *Repository[T]) Save(ctx context.Context, events ...Event) error {
	if r.err != nil {
		return r.err
	}
	if len(events) == 0 {
		return ErrNoEventsProduced
	}
	if isNil(events[0]) {
		return fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	v := events[0].EventVersion()
	if v < 0 {
		return fmt.Errorf("%w: event 0 of aggregate %q has version %d", ErrInvalidEvent, events[0].AggregateID(), v)
	}
	_, err := r.save(ctx, events[0].AggregateID(), max(v-1, 0), events)
	return err
}

// SaveExpecting appends events of one aggregate in one atomic append,
// expecting its stream at expected: Exact(n) (NoStream is Exact(0)), Any or
// StreamExists. With Any the events go at the end of the stream whatever its
// version, and with StreamExists at the end of a stream that has events;
// both still store each event's real version: the repository appends at the
// version the store reports and, when another writer gets there first,
// again as the RetryPolicy allows. Such events must leave their versions
// zero (embed Model). It returns the stream's new version.
func (r *Repository[T]) SaveExpecting(ctx context.Context, expected ExpectedVersion, events ...Event) (int64, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(events) == 0 {
		return 0, ErrNoEventsProduced
	}
	if isNil(events[0]) {
		return 0, fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	id := events[0].AggregateID()
	switch {
	case expected >= 0:
		return r.save(ctx, id, int64(expected), events)
	case expected != Any && expected != StreamExists:
		return 0, fmt.Errorf("%w: expected version %d", ErrInvalidEvent, int64(expected))
	}
	// Guess the stream's version and learn the real one from the conflict:
	// no read of its own, and every stored event names its true version.
	var filled []*Model // the versions this call fills in, cleared before each try
	for _, e := range events {
		if m := modelOf(e); m != nil && m.Version == 0 {
			filled = append(filled, m)
		}
	}
	base := int64(0)
	if expected == StreamExists {
		base = 1
	}
	guess := true // base is a guess, not a version the store reported
	return r.retry(ctx, r.StreamID(id), func() (int64, bool, error) {
		for {
			for _, m := range filled {
				m.Version = 0
			}
			v, err := r.save(ctx, id, base, events)
			var ce *ConcurrencyError
			if !errors.As(err, &ce) {
				return v, false, err
			}
			if expected == StreamExists && ce.Actual == 0 {
				return 0, false, &ConcurrencyError{Stream: ce.Stream, Expected: StreamExists, Actual: 0}
			}
			base = ce.Actual
			if !guess {
				return v, true, err // lost a race: the policy backs off
			}
			guess = false // the guess was wrong: try at once where the store said
		}
	})
}

func isNil(e Event) bool {
	if e == nil {
		return true
	}
	v := reflect.ValueOf(e)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// save checks and completes events (IDs, versions, times), encodes them and
// appends them expecting the stream at version base.
func (r *Repository[T]) save(ctx context.Context, id string, base int64, events []Event) (int64, error) {
	res, err := r.saveAt(ctx, id, base, events)
	return res.LastVersion, err
}

// saveAt is save, returning the append's result.
func (r *Repository[T]) saveAt(ctx context.Context, id string, base int64, events []Event) (AppendResult, error) {
	if id == "" {
		return AppendResult{}, fmt.Errorf("%w: event without aggregate ID", ErrInvalidEvent)
	}
	stream := r.StreamID(id)
	md := MetadataFrom(ctx)
	now := time.Now().UTC()
	records := make([]Record, len(events))
	for i, e := range events {
		if isNil(e) {
			return AppendResult{}, fmt.Errorf("%w: event %d of %q is nil", ErrInvalidEvent, i, stream)
		}
		want := base + int64(i) + 1
		if m := modelOf(e); m != nil {
			if m.ID == "" {
				m.ID = id
			}
			if m.Version == 0 {
				m.Version = want
			}
			if m.At.IsZero() {
				m.At = now
			}
		}
		if got := e.AggregateID(); got != id {
			return AppendResult{}, fmt.Errorf("%w: event %d belongs to %q, saving %q", ErrInvalidEvent, i, got, id)
		}
		if got := e.EventVersion(); got != want {
			if modelOf(e) == nil && got == 0 {
				return AppendResult{}, fmt.Errorf("%w: event %d of %q (%T) has version 0 and embeds no eventsource.Model, so its version cannot be filled in: set it to %d", ErrInvalidEvent, i, stream, e, want)
			}
			return AppendResult{}, fmt.Errorf("%w: event %d of %q has version %d, want %d", ErrInvalidEvent, i, stream, got, want)
		}
		rec, err := r.marshal(ctx, e)
		if err != nil {
			return AppendResult{}, err
		}
		rec.StreamID = stream
		rec.Metadata = md
		records[i] = rec
	}
	res, err := r.store.Append(ctx, stream, Exact(base), records)
	if err == nil && res.FirstVersion != base+1 { // a soft-deleted stream written again continues its versions
		for i, e := range events {
			if m := modelOf(e); m != nil {
				m.Version = res.FirstVersion + int64(i)
			}
		}
	}
	return res, err
}

// marshal encodes e with the serializer's context variant when it has one.
func (r *Repository[T]) marshal(ctx context.Context, e Event) (Record, error) {
	if cs, ok := r.ser.(ContextSerializer); ok {
		return cs.MarshalEventContext(ctx, e)
	}
	return r.ser.MarshalEvent(e)
}

// unmarshal decodes rec as DecodeRecord does; an event whose Model names no
// aggregate (a redacted one) gets the aggregate ID of its stream.
func (r *Repository[T]) unmarshal(ctx context.Context, rec Record) (Event, error) {
	e, err := DecodeRecord(ctx, r.ser, rec)
	if m := modelOf(e); err == nil && m != nil && m.ID == "" {
		m.ID = strings.TrimPrefix(rec.StreamID, r.prefix)
	}
	return e, err
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
	if cmd == nil || (reflect.ValueOf(cmd).Kind() == reflect.Pointer && reflect.ValueOf(cmd).IsNil()) {
		return 0, fmt.Errorf("%w: nil command", ErrInvalidCommand)
	}
	id := cmd.AggregateID()
	if id == "" {
		return 0, fmt.Errorf("%w: %T has no aggregate ID", ErrInvalidCommand, cmd)
	}
	return r.retry(ctx, r.StreamID(id), func() (int64, bool, error) {
		agg, version, err := r.load(ctx, id, 0)
		if errors.Is(err, ErrNotFound) {
			agg, err = r.New(), nil
		}
		if err != nil {
			return 0, false, err
		}
		h, ok := any(agg).(CommandHandler)
		if !ok {
			return 0, false, fmt.Errorf("%w: %T", ErrNoCommandHandler, agg)
		}
		events, err := h.Apply(ctx, cmd)
		if err != nil {
			return version, false, fmt.Errorf("eventsource: %T on %q: %w", cmd, id, err)
		}
		if len(events) == 0 {
			return version, false, ErrNoEventsProduced
		}
		res, err := r.saveAt(ctx, id, version, events)
		if err != nil {
			return version, errors.Is(err, ErrConcurrency), err
		}
		if r.snap != nil {
			r.snapshotAfter(ctx, id, agg, version, res, events)
		}
		return res.LastVersion, false, nil
	})
}

// snapshotAfter folds the saved events into agg and snapshots it when the
// policy says so. It never fails the save: a fold error is logged.
func (r *Repository[T]) snapshotAfter(ctx context.Context, id string, agg T, before int64, res AppendResult, events []Event) {
	for _, e := range events {
		if err := agg.On(e); err != nil {
			r.log.WarnContext(ctx, "eventsource: snapshot skipped: the saved events do not fold", slog.String("aggregate", id), slog.Any("error", err))
			return
		}
	}
	if r.due(agg, before, res.LastVersion) {
		r.writeSnapshot(ctx, r.StreamID(id), res.LastVersion, res.LastPosition, agg)
	}
}

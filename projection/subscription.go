package projection

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventsource-go/eventsource"
)

// Handler handles one record of the global log.
type Handler func(ctx context.Context, r eventsource.Record) error

// Subscription is a catch-up subscription to a store's global log: it reads
// history from a position in batches, then follows new records live, with no
// gap and no duplicate at the switch (it always reads on from the last
// position it delivered, and the store's positions only grow).
//
// Live delivery waits on the store's eventsource.Notifier when it has one
// (with a poll every MaxPoll as a safety net), and otherwise polls with
// backoff between MinPoll and MaxPoll.
type Subscription struct {
	store            eventsource.Store
	filter           eventsource.Filter
	where            []Condition
	minPoll, maxPoll time.Duration
	onCaughtUp       func()
	log              *slog.Logger

	from     atomic.Uint64 // next position to read
	lastAt   atomic.Int64  // RecordedAt of the last delivered record, Unix ns
	caughtUp atomic.Bool
	running  sync.Mutex
}

// NewSubscription returns a subscription to store's global log. Nothing is
// read until Run.
func NewSubscription(store eventsource.Store, opts ...SubscriptionOption) *Subscription {
	s := &Subscription{store: store, minPoll: 10 * time.Millisecond, maxPoll: time.Second}
	for _, o := range opts {
		if o != nil {
			o.applySubscription(s)
		}
	}
	if s.minPoll <= 0 {
		s.minPoll = time.Millisecond
	}
	if s.maxPoll < s.minPoll {
		s.maxPoll = s.minPoll
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// ErrRunning: Run was called on a subscription that is already running.
var ErrRunning = errors.New("projection: already running")

// Run delivers records to h, in position order, until ctx ends (it returns
// ctx's error), the store fails, or h returns an error (Run returns it,
// and the record is not counted as delivered). Run may be called again
// afterwards: it resumes after the last record h accepted.
func (s *Subscription) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return eventsource.ErrInvalidConfig
	}
	return s.RunBatches(ctx, 1, func(ctx context.Context, recs []eventsource.Record) error { return h(ctx, recs[0]) })
}

// RunBatches is Run delivering up to size records at a time: a batch is
// handed over when it is full or when the subscription has caught up.
func (s *Subscription) RunBatches(ctx context.Context, size int, h func(context.Context, []eventsource.Record) error) error {
	if s.store == nil || h == nil {
		return eventsource.ErrInvalidConfig
	}
	if !s.running.TryLock() {
		return ErrRunning
	}
	defer s.running.Unlock()

	var wake <-chan struct{}
	if n, ok := eventsource.As[eventsource.Notifier](s.store); ok {
		nctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := n.Notify(nctx)
		if err != nil {
			return err
		}
		wake = ch
	}
	wait := s.minPoll
	for {
		n, err := s.readBatches(ctx, max(size, 1), h)
		if err != nil {
			return err
		}
		if n > 0 {
			wait = s.minPoll
			continue // there may be more: read until a pass finds nothing
		}
		if !s.caughtUp.Swap(true) && s.onCaughtUp != nil {
			s.onCaughtUp()
		}
		if wake != nil {
			wait = s.maxPoll
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case _, ok := <-wake:
			if !ok {
				wake = nil // the store stopped signalling: poll
			}
		case <-t.C:
			if wake == nil {
				wait = min(wait*2, s.maxPoll)
			}
		}
		t.Stop()
	}
}

// readBatches reads the log from the current position to its end, handing
// matching records to h in batches of up to size, and returns how many
// positions it advanced over.
func (s *Subscription) readBatches(ctx context.Context, size int, h func(context.Context, []eventsource.Record) error) (int, error) {
	n := 0
	batch := make([]eventsource.Record, 0, size)
	var next uint64 // the position after the last record read
	var at int64
	flush := func() error {
		if len(batch) > 0 {
			if err := h(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		if next > 0 {
			s.from.Store(next)
			s.lastAt.Store(at)
		}
		return nil
	}
	for r, err := range s.store.ReadAll(ctx, s.from.Load(), s.filter) {
		if err != nil {
			return n, err
		}
		n++
		s.caughtUp.Store(false)
		next, at = r.Position+1, r.RecordedAt.UnixNano()
		if matchAll(s.where, &r) {
			batch = append(batch, r)
			if len(batch) == size {
				if err := flush(); err != nil {
					return n, err
				}
			}
		}
	}
	return n, flush()
}

// Position is the position of the last record the subscription delivered
// (or skipped by its conditions), 0 before the first.
func (s *Subscription) Position() uint64 {
	if p := s.from.Load(); p > 0 {
		return p - 1
	}
	return 0
}

// CaughtUp reports whether the subscription has delivered everything that
// was committed when it last looked.
func (s *Subscription) CaughtUp() bool { return s.caughtUp.Load() }

// Lag says how far behind the subscription is: the number of matching
// records committed after its position (counted up to limit; 0 means
// 100,000), and how long ago the last delivered record was committed.
func (s *Subscription) Lag(ctx context.Context, limit int) (events int, age time.Duration, err error) {
	if limit <= 0 {
		limit = 100_000
	}
	for r, err := range s.store.ReadAll(ctx, s.from.Load(), s.filter) {
		if err != nil {
			return events, 0, err
		}
		if matchAll(s.where, &r) {
			events++
		}
		if events >= limit {
			break
		}
	}
	if at := s.lastAt.Load(); at != 0 && events > 0 {
		age = time.Since(time.Unix(0, at))
	}
	return events, age, nil
}

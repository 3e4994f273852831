package eventsource

import (
	"context"
	"fmt"
	"time"
)

// Root is an optional base for aggregates that record their own changes,
// for code that prefers methods on the aggregate (acc.Deposit(100)) to
// commands. Embed it, and have the aggregate's methods call Raise; save the
// raised events with Repository.SaveChanges. On stays the one way state
// changes: Raise applies each event through it.
//
//	type Account struct {
//		eventsource.Root
//		Balance int64
//	}
//
//	func (a *Account) Deposit(amount int64) error {
//		return a.Raise(a, &MoneyDeposited{Amount: amount})
//	}
type Root struct {
	id      string
	loaded  int64   // the version Load left the aggregate at
	changes []Event // raised since, not yet saved
}

func (r *Root) root() *Root { return r }

type rooted interface{ root() *Root }

// Raise applies e to agg with On and keeps it for SaveChanges. agg is the
// aggregate that embeds r. An event embedding Model gets its aggregate ID,
// version and time filled in when they are zero.
func (r *Root) Raise(agg Aggregate, e Event) error {
	if e == nil {
		return fmt.Errorf("%w: Raise of a nil event", ErrInvalidEvent)
	}
	if m := modelOf(e); m != nil {
		if m.ID == "" {
			m.ID = r.id
		}
		if m.Version == 0 {
			m.Version = r.Version() + 1
		}
		if m.At.IsZero() {
			m.At = time.Now().UTC()
		}
	}
	if r.id == "" {
		r.id = e.AggregateID()
	}
	if err := agg.On(e); err != nil {
		return err
	}
	r.changes = append(r.changes, e)
	return nil
}

// Version is the aggregate's version including raised, unsaved events.
func (r *Root) Version() int64 { return r.loaded + int64(len(r.changes)) }

// Changes returns the events raised since the aggregate was loaded or last
// saved.
func (r *Root) Changes() []Event { return r.changes }

// SaveChanges appends the events agg raised (see Root), expecting the stream
// to be at the version agg was loaded at: a concurrent change is a
// *ConcurrencyError and nothing is saved. On success the changes are cleared.
// agg must embed Root.
func (r *Repository[T]) SaveChanges(ctx context.Context, agg T) error {
	if r.err != nil {
		return r.err
	}
	rt, ok := any(agg).(rooted)
	if !ok {
		return fmt.Errorf("%w: %T does not embed eventsource.Root", ErrInvalidConfig, agg)
	}
	root := rt.root()
	if len(root.changes) == 0 {
		return ErrNoEventsProduced
	}
	v, err := r.save(ctx, root.changes[0].AggregateID(), root.loaded, root.changes)
	if err != nil {
		return err
	}
	root.id, root.loaded, root.changes = root.changes[0].AggregateID(), v, nil
	return nil
}

package projection

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/eventsource-go/eventsource"
)

// Projection folds the global log into a state of type S that is saved,
// JSON-encoded, with its checkpoint in one write: after a restart it resumes
// from the saved state, and each event is folded exactly once.
type Projection[S any] struct {
	*runner
	app *stateApplier[S]
}

// NewProjection returns a projection named name folding events into a state
// that starts as initial, saved in cps. fold must not keep references into
// the state it is given other than the one it returns.
func NewProjection[S any](name string, events eventsource.Store, cps CheckpointStore, initial S, fold func(S, eventsource.Record) (S, error), opts ...Option) *Projection[S] {
	r := newRunner(name, events, cps, opts)
	a := &stateApplier[S]{cps: cps, initial: initial, state: initial, fold: fold}
	r.app = a
	return &Projection[S]{runner: r, app: a}
}

// State returns the state as last saved.
func (p *Projection[S]) State() S {
	p.app.mu.Lock()
	defer p.app.mu.Unlock()
	return p.app.state
}

type stateApplier[S any] struct {
	cps     CheckpointStore
	initial S
	fold    func(S, eventsource.Record) (S, error)
	mu      sync.Mutex
	state   S
}

func (a *stateApplier[S]) init(context.Context) error { return nil }

func (a *stateApplier[S]) loaded(cp Checkpoint) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cp.State == nil {
		a.state = a.initial
		return nil
	}
	var s S
	if err := json.Unmarshal(cp.State, &s); err != nil {
		return fmt.Errorf("%w: projection %q state: %w", eventsource.ErrCorruptData, cp.Name, err)
	}
	a.state = s
	return nil
}

func (a *stateApplier[S]) apply(ctx context.Context, owner string, recs []eventsource.Record, cp Checkpoint, handled Request) (Request, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.state
	if len(recs) > 0 {
		// Fold a decoded copy, so a failed batch leaves the state untouched.
		b, err := json.Marshal(a.state)
		if err != nil {
			return RequestNone, err
		}
		var fresh S
		if err := json.Unmarshal(b, &fresh); err != nil {
			return RequestNone, err
		}
		s = fresh
		for _, rec := range recs {
			if s, err = a.fold(s, rec); err != nil {
				return RequestNone, err
			}
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return RequestNone, err
	}
	cp.State = b
	req, err := a.cps.Save(ctx, owner, cp, handled)
	if err != nil {
		return RequestNone, err
	}
	a.state = s
	return req, nil
}

func (a *stateApplier[S]) reset(ctx context.Context, owner string, cp Checkpoint) error {
	a.mu.Lock()
	a.state = a.initial
	a.mu.Unlock()
	_, err := a.apply(ctx, owner, nil, cp, RequestReset)
	return err
}

func (a *stateApplier[S]) remove(context.Context) error {
	a.mu.Lock()
	a.state = a.initial
	a.mu.Unlock()
	return nil
}

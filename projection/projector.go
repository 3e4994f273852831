package projection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/eventsource-go/eventsource"
)

// ReadModel is a user's read model kept up to date by a Projector. Tx is
// the transaction type of its database (*sql.Tx, pgx.Tx); every method runs
// inside a transaction that also writes the projection's checkpoint.
type ReadModel[Tx any] interface {
	// IsInitialized reports whether Init has created the read model.
	IsInitialized(ctx context.Context, tx Tx) (bool, error)
	// Init creates the read model (its tables). MySQL commits DDL at once,
	// outside the transaction, so there Init must be safe to run again after
	// an interruption (CREATE TABLE IF NOT EXISTS) and IsInitialized must
	// check every table.
	Init(ctx context.Context, tx Tx) error
	// Apply applies a batch of records, in position order.
	Apply(ctx context.Context, tx Tx, records []eventsource.Record) error
	// Reset empties the read model for a rebuild from position 0.
	Reset(ctx context.Context, tx Tx) error
	// Delete removes the read model.
	Delete(ctx context.Context, tx Tx) error
}

// ErrorPolicy says what a projection does when its handler fails.
type ErrorPolicy struct {
	Retries int           // further attempts before giving up
	Backoff time.Duration // wait before the first retry, doubling
	// Skip gives up on a failing event by skipping it (recorded in
	// Checkpoint.Skipped) instead of faulting the projection.
	Skip bool
}

// applier applies batches and writes the checkpoint with them, atomically.
type applier interface {
	init(ctx context.Context) error
	apply(ctx context.Context, owner string, recs []eventsource.Record, cp Checkpoint, handled Request) (Request, error)
	reset(ctx context.Context, owner string, cp Checkpoint) error
	remove(ctx context.Context) error
	loaded(cp Checkpoint) error // the checkpoint Run starts from
}

type runner struct {
	name   string
	events eventsource.Store
	cps    CheckpointStore
	app    applier

	batch         int
	ttl           time.Duration
	owner         string
	policy        ErrorPolicy
	filter        eventsource.Filter
	where         []Condition
	minPoll, poll time.Duration
	log           *slog.Logger

	onCaughtUp func()

	mu      sync.Mutex
	cp      Checkpoint // last saved
	holding bool       // this instance holds the lease
	until   time.Time  // until when, at the latest (this process's clock)
}

func newRunner(name string, events eventsource.Store, cps CheckpointStore, opts []Option) *runner {
	r := &runner{name: name, events: events, cps: cps, batch: 100, ttl: 30 * time.Second, minPoll: 10 * time.Millisecond, poll: time.Second}
	for _, o := range opts {
		if o != nil {
			o.applyRunner(r)
		}
	}
	if r.owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		r.owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.ttl <= 0 {
		r.ttl = 30 * time.Second
	}
	if r.minPoll <= 0 {
		r.minPoll = time.Millisecond
	}
	if r.poll < r.minPoll {
		r.poll = r.minPoll
	}
	return r
}

// Name is the projection's name.
func (r *runner) Name() string { return r.name }

// Checkpoint returns the checkpoint this instance saved last, with Holder
// set to this instance's owner while it holds the lease (it is running the
// projection) and empty otherwise: after Run returns, while it stands by,
// and once a lease it failed to renew has run out. Status reads what the
// checkpoint store says, whichever instance runs the projection.
func (r *runner) Checkpoint() Checkpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := r.cp
	cp.Holder = ""
	if r.holding && time.Now().Before(r.until) {
		cp.Holder = r.owner
	}
	return cp
}

// Status reads the projection's checkpoint from the checkpoint store. Its
// Status is the state asked for (StatusRunning stays after Run returns, so
// the next Run resumes); its Holder names the instance running the
// projection now, in this process or another, and is empty when none holds
// an unexpired lease.
func (r *runner) Status(ctx context.Context) (Checkpoint, error) {
	if r.cps == nil || r.name == "" {
		return Checkpoint{}, fmt.Errorf("%w: projection needs a name and a checkpoint store", eventsource.ErrInvalidConfig)
	}
	return r.cps.Load(ctx, r.name)
}

// acquire takes or renews the lease and notes until when this instance
// holds it; an error means it may not hold it any more.
func (r *runner) acquire(ctx context.Context) error {
	start := time.Now() // before the store's clock starts the lease
	err := r.cps.Acquire(ctx, r.name, r.owner, r.ttl)
	r.mu.Lock()
	r.holding, r.until = err == nil, start.Add(r.ttl)
	r.mu.Unlock()
	return err
}

// dropped notes that this instance no longer holds the lease.
func (r *runner) dropped() {
	r.mu.Lock()
	r.holding = false
	r.mu.Unlock()
}

// Stop asks the instance running the projection (here or elsewhere) to stop.
func (r *runner) Stop(ctx context.Context) error { return r.cps.Request(ctx, r.name, RequestStop) }

// Reset asks for a rebuild from position 0.
func (r *runner) Reset(ctx context.Context) error { return r.cps.Request(ctx, r.name, RequestReset) }

// Delete asks for the read model and checkpoint to be removed.
func (r *runner) Delete(ctx context.Context) error { return r.cps.Request(ctx, r.name, RequestDelete) }

// Skip asks a faulted projection to skip the event that faulted it: the
// next Run (or the running instance) records it in Checkpoint.Skipped and
// goes on after it. Skip and Start may come in either order; Skip does
// nothing once the event has been handled.
func (r *runner) Skip(ctx context.Context) error { return r.cps.Request(ctx, r.name, RequestSkip) }

// Start lets a stopped or faulted projection run again. On a faulted one
// the next Run retries the event that faulted it, unless Skip was (or is
// then) asked for.
func (r *runner) Start(ctx context.Context) error {
	return r.cps.SetStatus(ctx, r.name, StatusRunning)
}

// Run processes the projection until ctx ends (returning ctx's error), it is
// stopped (ErrStopped) or deleted (ErrDeleted), or it faults (a
// *FaultError). While another instance holds the lease it waits as a
// standby and takes over when that lease expires.
func (r *runner) Run(ctx context.Context) error {
	if r.events == nil || r.cps == nil || r.name == "" {
		return fmt.Errorf("%w: projection needs a name, an event store and a checkpoint store", eventsource.ErrInvalidConfig)
	}
	for {
		err := r.acquire(ctx)
		if errors.Is(err, ErrLeaseHeld) {
			r.log.DebugContext(ctx, "projection: standing by", slog.String("projection", r.name))
			if err := sleep(ctx, r.ttl/3); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				// The lease may have been written before the cancellation
				// reached the store: give it back rather than leave it to expire.
				r.release(ctx)
				return ctx.Err()
			}
			return err
		}
		err = r.process(ctx)
		if errors.Is(err, ErrLeaseLost) {
			r.dropped()
			r.log.WarnContext(ctx, "projection: lease lost", slog.String("projection", r.name))
			continue
		}
		r.release(ctx)
		if ctx.Err() != nil && !errors.Is(err, ErrFaulted) && !errors.Is(err, ErrStopped) && !errors.Is(err, ErrDeleted) {
			return ctx.Err() // whatever failed, it failed because Run was cancelled
		}
		return err
	}
}

// release gives up the lease, even when ctx has ended.
func (r *runner) release(ctx context.Context) {
	r.dropped()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.cps.Release(rctx, r.name, r.owner); err != nil {
		// The lease runs out by itself; a standby waits until then.
		r.log.WarnContext(ctx, "projection: release failed", slog.String("projection", r.name), slog.Any("error", err))
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errRequest interrupts the subscription when a control request arrives.
var errRequest = errors.New("projection: control request")

// process runs while this instance holds the lease.
func (r *runner) process(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// Renew the lease; losing it stops processing at once. Run releases
	// the lease after process returns, so no renewal may still be on its
	// way then.
	renewed := make(chan struct{})
	defer func() { cancel(nil); <-renewed }()
	go func() {
		defer close(renewed)
		for {
			if sleep(ctx, r.ttl/3) != nil {
				return
			}
			if err := r.acquire(ctx); err != nil {
				cancel(fmt.Errorf("%w: %w", ErrLeaseLost, err))
				return
			}
		}
	}()

	cp, err := r.cps.Load(ctx, r.name)
	if err != nil {
		return err
	}
	if err := r.app.loaded(cp); err != nil {
		return err
	}
	r.mu.Lock()
	r.cp = cp
	r.mu.Unlock()
	if err := r.app.init(ctx); err != nil {
		return err
	}
	for {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		done, err := r.handleRequest(ctx, &cp)
		if done || err != nil {
			return err
		}
		if cp.Status != StatusRunning {
			cp.Status, cp.Error = StatusRunning, ""
			if err := r.save(ctx, nil, &cp, RequestNone); err != nil {
				return err
			}
		}
		err = r.follow(ctx, &cp)
		if errors.Is(err, errRequest) {
			if cp, err = r.cps.Load(ctx, r.name); err != nil {
				return err
			}
			continue
		}
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		return err
	}
}

// handleRequest acts on a pending request or a stopped/faulted status; done
// means Run must return err.
func (r *runner) handleRequest(ctx context.Context, cp *Checkpoint) (bool, error) {
	switch cp.Request {
	case RequestStop:
		cp.Status = StatusStopped
		return true, errors.Join(ErrStopped, r.save(ctx, nil, cp, RequestStop))
	case RequestReset:
		cp.Status = StatusResetting
		if err := r.save(ctx, nil, cp, RequestNone); err != nil {
			return true, err
		}
		next := Checkpoint{Name: r.name, Status: StatusRunning}
		if err := r.app.reset(ctx, r.owner, next); err != nil {
			return true, err
		}
		r.log.InfoContext(ctx, "projection: reset", slog.String("projection", r.name))
		*cp = next
		return false, nil
	case RequestDelete:
		cp.Status = StatusDeleting
		if err := r.save(ctx, nil, cp, RequestNone); err != nil {
			return true, err
		}
		if err := r.app.remove(ctx); err != nil {
			return true, err
		}
		return true, errors.Join(ErrDeleted, r.cps.Delete(ctx, r.name))
	case RequestSkip:
		// FaultedAt, not the status: Start may have set the status to
		// running before this runner saw the request, and a fault's
		// FaultedAt stays until the event is handled or skipped.
		if cp.FaultedAt > cp.Position {
			cp.Skipped = append(cp.Skipped, cp.FaultedAt)
			cp.Position = cp.FaultedAt
			r.log.WarnContext(ctx, "projection: skipping event on request", slog.String("projection", r.name), slog.Uint64("position", cp.FaultedAt))
		}
		cp.Status, cp.Error, cp.FaultedAt = StatusRunning, "", 0
		return false, r.save(ctx, nil, cp, RequestSkip)
	}
	if cp.Status == StatusStopped {
		return true, ErrStopped
	}
	return false, nil
}

// save writes cp with recs applied (none for a pure checkpoint change).
func (r *runner) save(ctx context.Context, recs []eventsource.Record, cp *Checkpoint, handled Request) error {
	req, err := r.app.apply(ctx, r.owner, recs, *cp, handled)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.cp = *cp
	r.mu.Unlock()
	cp.Request = req
	return nil
}

// follow subscribes from the checkpoint and applies batches until ctx ends,
// a request arrives (errRequest) or a batch fails for good.
func (r *runner) follow(ctx context.Context, cp *Checkpoint) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() { // look for requests left by other processes
		for sleep(ctx, r.poll) == nil {
			latest, err := r.cps.Load(ctx, r.name)
			if err == nil && latest.Request != RequestNone {
				cancel(errRequest)
				return
			}
		}
	}()
	opts := []SubscriptionOption{From(cp.Position + 1), WithFilter(r.filter), Where(r.where...), WithPolling(r.minPoll, r.poll)}
	if r.onCaughtUp != nil {
		// The subscription catches up only after the batches before have
		// been applied and checkpointed.
		opts = append(opts, OnCaughtUp(r.onCaughtUp))
	}
	sub := NewSubscription(r.events, opts...)
	err := sub.RunBatches(ctx, r.batch, func(ctx context.Context, recs []eventsource.Record) error {
		if err := r.applyBatch(ctx, recs, cp); err != nil {
			return err
		}
		if cp.Request != RequestNone {
			return errRequest
		}
		return nil
	})
	if cause := context.Cause(ctx); errors.Is(cause, errRequest) {
		return errRequest
	}
	return err
}

// applyBatch applies recs with the error policy: retries, then (for a batch)
// one record at a time to find the one that fails, which is skipped or
// faults the projection.
func (r *runner) applyBatch(ctx context.Context, recs []eventsource.Record, cp *Checkpoint) error {
	next := *cp
	next.Position, next.Status = recs[len(recs)-1].Position, StatusRunning
	if next.FaultedAt <= next.Position {
		next.FaultedAt = 0 // the event that faulted it is handled now
	}
	err := r.save(ctx, recs, &next, RequestNone)
	for attempt, wait := 0, r.policy.Backoff; err != nil && attempt < r.policy.Retries && retryable(err); attempt++ {
		if serr := sleep(ctx, wait); serr != nil {
			return serr
		}
		wait *= 2
		err = r.save(ctx, recs, &next, RequestNone)
	}
	if err == nil {
		*cp = next
		return nil
	}
	if !retryable(err) {
		return err
	}
	if len(recs) > 1 {
		for i := range recs {
			if err := r.applyBatch(ctx, recs[i:i+1], cp); err != nil {
				return err
			}
		}
		return nil
	}
	rec := recs[0]
	if r.policy.Skip {
		r.log.WarnContext(ctx, "projection: skipping event", slog.String("projection", r.name), slog.Uint64("position", rec.Position), slog.String("error", err.Error()))
		skip := *cp
		skip.Position, skip.Skipped = rec.Position, append(append([]uint64(nil), cp.Skipped...), rec.Position)
		if serr := r.save(ctx, nil, &skip, RequestNone); serr != nil {
			return serr
		}
		*cp = skip
		return nil
	}
	fault := *cp
	fault.Status, fault.Error, fault.FaultedAt = StatusFaulted, err.Error(), rec.Position
	if serr := r.save(ctx, nil, &fault, RequestNone); serr != nil {
		return errors.Join(err, serr)
	}
	*cp = fault
	return &FaultError{Name: r.name, Position: rec.Position, Err: err}
}

// retryable reports whether err came from the handler rather than from
// losing the lease or the context.
func retryable(err error) bool {
	return !errors.Is(err, ErrLeaseLost) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// Projector keeps a ReadModel up to date from the global log. With a SQL
// TxCheckpointStore the read model's writes and the checkpoint commit in one
// transaction, so each event is applied exactly once even if the process is
// killed at any point.
type Projector[Tx any] struct {
	*runner
}

// NewProjector returns a projector named name applying events to rm, with
// its checkpoint in cps.
func NewProjector[Tx any](name string, events eventsource.Store, cps TxCheckpointStore[Tx], rm ReadModel[Tx], opts ...Option) *Projector[Tx] {
	r := newRunner(name, events, cps, opts)
	r.app = &readModelApplier[Tx]{name: name, cps: cps, rm: rm}
	return &Projector[Tx]{r}
}

type readModelApplier[Tx any] struct {
	name string
	cps  TxCheckpointStore[Tx]
	rm   ReadModel[Tx]
}

func (a *readModelApplier[Tx]) loaded(Checkpoint) error { return nil }

func (a *readModelApplier[Tx]) init(ctx context.Context) error {
	return a.cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		ok, err := a.rm.IsInitialized(ctx, tx)
		if err != nil || ok {
			return err
		}
		return a.rm.Init(ctx, tx)
	})
}

func (a *readModelApplier[Tx]) apply(ctx context.Context, owner string, recs []eventsource.Record, cp Checkpoint, handled Request) (req Request, err error) {
	err = a.cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		if len(recs) > 0 {
			if err := a.rm.Apply(ctx, tx, recs); err != nil {
				return err
			}
		}
		req, err = a.cps.SaveTx(ctx, tx, owner, cp, handled)
		return err
	})
	return req, err
}

func (a *readModelApplier[Tx]) reset(ctx context.Context, owner string, cp Checkpoint) error {
	return a.cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		if err := a.rm.Reset(ctx, tx); err != nil {
			return err
		}
		_, err := a.cps.SaveTx(ctx, tx, owner, cp, RequestReset)
		return err
	})
}

func (a *readModelApplier[Tx]) remove(ctx context.Context) error {
	return a.cps.InTx(ctx, func(ctx context.Context, tx Tx) error { return a.rm.Delete(ctx, tx) })
}

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

package projection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// ErrorPolicy says what a projection does when its handler fails.
type ErrorPolicy struct {
	Retries int           // further attempts before giving up
	Backoff time.Duration // wait before the first retry, doubling
	// Skip gives up on a failing event by skipping it (recorded in
	// Checkpoint.Skipped) instead of faulting the projection.
	Skip bool
	// Park (Projectors) gives up on a failing event by parking it
	// (Checkpoint.Parked, with the error, attempts and time) and goes on.
	// Later events of the same partition key are parked behind it, so the
	// key's order is kept, unless ParkedKeyContinues. Parked events are
	// replayed (ReplayParked) or discarded (DiscardParked).
	Park               bool
	ParkedKeyContinues bool
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

	workers     int
	partition   func(*eventsource.Record) string
	version     int
	base        string // the name of the projector's first version
	parkLimit   int
	digestRange uint64

	mu      sync.Mutex
	cp      Checkpoint // last saved
	holding bool       // this instance holds the lease
	until   time.Time  // until when, at the latest (this process's clock)
}

func newRunner(name string, events eventsource.Store, cps CheckpointStore, opts []Option) *runner {
	r := &runner{name: name, events: events, cps: cps, batch: 100, ttl: 30 * time.Second, minPoll: 10 * time.Millisecond, poll: time.Second,
		workers: 1, partition: ByStream, version: 1, parkLimit: 1000, digestRange: 10_000}
	for _, o := range opts {
		if o != nil {
			o.applyRunner(r)
		}
	}
	r.base = name
	if r.version > 1 && name != "" {
		r.name = versionName(name, r.version)
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
			if err := storekit.Sleep(ctx, r.ttl/3); err != nil {
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

// follower is an applier that follows the log itself (a Projector's
// parallel pipeline) and replays parked events.
type follower interface {
	follow(ctx context.Context, s *session) error
	replay(ctx context.Context, s *session) error
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
			if storekit.Sleep(ctx, r.ttl/3) != nil {
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
	r.publish(cp)
	if err := r.app.init(ctx); err != nil {
		return err
	}
	s := &session{runner: r, cp: cp}
	for {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		done, err := s.handleRequest(ctx)
		if done || err != nil {
			return err
		}
		if s.cp.Status != StatusRunning {
			next := s.cp
			next.Status, next.Error = StatusRunning, ""
			if err := s.commit(ctx, nil, next, RequestNone); err != nil {
				return err
			}
		}
		err = s.follow(ctx)
		if errors.Is(err, errRequest) {
			if s.cp, err = r.cps.Load(ctx, r.name); err != nil {
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

// publish makes cp what Checkpoint returns.
func (r *runner) publish(cp Checkpoint) {
	r.mu.Lock()
	r.cp = cp
	r.mu.Unlock()
}

// session is one tenure of the lease: it owns the checkpoint as this
// instance last committed it, and every change goes through commit.
type session struct {
	*runner
	cp Checkpoint
}

// commit writes next with recs applied (none for a pure checkpoint
// change), marking handled as dealt with; then next, with the request the
// store reports pending, is the session's checkpoint.
func (s *session) commit(ctx context.Context, recs []eventsource.Record, next Checkpoint, handled Request) error {
	req, err := s.app.apply(ctx, s.owner, recs, next, handled)
	if err != nil {
		return err
	}
	next.Request = req
	s.cp = next
	s.publish(next)
	return nil
}

// handleRequest acts on a pending request or a stopped/faulted status; done
// means Run must return err.
func (s *session) handleRequest(ctx context.Context) (bool, error) {
	cp := s.cp
	switch cp.Request {
	case RequestStop:
		cp.Status = StatusStopped
		return true, errors.Join(ErrStopped, s.commit(ctx, nil, cp, RequestStop))
	case RequestReset:
		cp.Status = StatusResetting
		if err := s.commit(ctx, nil, cp, RequestNone); err != nil {
			return true, err
		}
		next := Checkpoint{Name: s.name, Status: StatusRunning}
		if err := s.app.reset(ctx, s.owner, next); err != nil {
			return true, err
		}
		s.log.InfoContext(ctx, "projection: reset", slog.String("projection", s.name))
		s.cp = next
		s.publish(next)
		return false, nil
	case RequestDelete:
		cp.Status = StatusDeleting
		if err := s.commit(ctx, nil, cp, RequestNone); err != nil {
			return true, err
		}
		if err := s.app.remove(ctx); err != nil {
			return true, err
		}
		return true, errors.Join(ErrDeleted, s.cps.Delete(ctx, s.name))
	case RequestReplay:
		if f, ok := s.app.(follower); ok {
			if err := f.replay(ctx, s); err != nil {
				return true, err
			}
			latest, err := s.cps.Load(ctx, s.name)
			if err != nil {
				return true, err
			}
			return false, s.commit(ctx, nil, latest, RequestReplay)
		}
		return false, s.commit(ctx, nil, cp, RequestReplay)
	case RequestSkip:
		if _, ok := s.app.(follower); ok && cp.FaultedAt > cp.Position {
			// A projector's workers commit out of order: the event is
			// handled as skipped when it comes round again.
			cp.Skipped = append(slices.Clip(cp.Skipped), cp.FaultedAt)
			s.log.WarnContext(ctx, "projection: skipping event on request", slog.String("projection", s.name), slog.Uint64("position", cp.FaultedAt))
			cp.Status, cp.Error, cp.FaultedAt = StatusRunning, "", 0
			return false, s.commit(ctx, nil, cp, RequestSkip)
		}
		// FaultedAt, not the status: Start may have set the status to
		// running before this runner saw the request, and a fault's
		// FaultedAt stays until the event is handled or skipped.
		if cp.FaultedAt > cp.Position {
			cp.Skipped = append(slices.Clip(cp.Skipped), cp.FaultedAt)
			cp.Position = cp.FaultedAt
			s.log.WarnContext(ctx, "projection: skipping event on request", slog.String("projection", s.name), slog.Uint64("position", cp.FaultedAt))
		}
		cp.Status, cp.Error, cp.FaultedAt = StatusRunning, "", 0
		return false, s.commit(ctx, nil, cp, RequestSkip)
	}
	if cp.Status == StatusStopped {
		return true, ErrStopped
	}
	if f, ok := s.app.(follower); ok && cp.Status != StatusSuperseded && cp.Status != StatusDropped && markedForReplay(cp.Parked) {
		// A replay asked for while another request was pending.
		if err := f.replay(ctx, s); err != nil {
			return true, err
		}
		latest, err := s.cps.Load(ctx, s.name)
		if err != nil {
			return true, err
		}
		s.cp = latest
		s.publish(latest)
	}
	if cp.Status == StatusSuperseded || cp.Status == StatusDropped {
		return true, ErrSuperseded
	}
	return false, nil
}

// follow subscribes from the checkpoint and applies batches until ctx ends,
// a request arrives (errRequest) or a batch fails for good.
func (s *session) follow(ctx context.Context) error {
	if f, ok := s.app.(follower); ok {
		return f.follow(ctx, s)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() { // look for requests left by other processes
		for storekit.Sleep(ctx, s.poll) == nil {
			latest, err := s.cps.Load(ctx, s.name)
			if err == nil && latest.Request != RequestNone {
				cancel(errRequest)
				return
			}
		}
	}()
	opts := []SubscriptionOption{From(s.cp.Position + 1), WithFilter(s.filter), Where(s.where...), WithPolling(s.minPoll, s.poll)}
	if s.onCaughtUp != nil {
		// The subscription catches up only after the batches before have
		// been applied and checkpointed.
		opts = append(opts, OnCaughtUp(s.onCaughtUp))
	}
	sub := NewSubscription(s.events, opts...)
	err := sub.RunBatches(ctx, s.batch, func(ctx context.Context, recs []eventsource.Record) error {
		if err := s.applyBatch(ctx, recs); err != nil {
			return err
		}
		if s.cp.Request != RequestNone {
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
func (s *session) applyBatch(ctx context.Context, recs []eventsource.Record) error {
	next := s.cp
	next.Position, next.Status = recs[len(recs)-1].Position, StatusRunning
	if next.FaultedAt <= next.Position {
		next.FaultedAt = 0 // the event that faulted it is handled now
	}
	err := s.commit(ctx, recs, next, RequestNone)
	for attempt, wait := 0, s.policy.Backoff; err != nil && attempt < s.policy.Retries && retryable(err); attempt++ {
		if serr := storekit.Sleep(ctx, wait); serr != nil {
			return serr
		}
		wait *= 2
		err = s.commit(ctx, recs, next, RequestNone)
	}
	if err == nil || !retryable(err) {
		return err
	}
	if len(recs) > 1 {
		for i := range recs {
			if err := s.applyBatch(ctx, recs[i:i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	rec := recs[0]
	if s.policy.Skip {
		s.log.WarnContext(ctx, "projection: skipping event", slog.String("projection", s.name), slog.Uint64("position", rec.Position), slog.String("error", err.Error()))
		skip := s.cp
		skip.Position, skip.Skipped = rec.Position, append(slices.Clip(s.cp.Skipped), rec.Position)
		return s.commit(ctx, nil, skip, RequestNone)
	}
	fault := s.cp
	fault.Status, fault.Error, fault.FaultedAt = StatusFaulted, err.Error(), rec.Position
	if serr := s.commit(ctx, nil, fault, RequestNone); serr != nil {
		return errors.Join(err, serr)
	}
	return &FaultError{Name: s.name, Position: rec.Position, Err: err}
}

// retryable reports whether err came from the handler rather than from
// losing the lease or the context.
func retryable(err error) bool {
	return !errors.Is(err, ErrLeaseLost) && !errors.Is(err, ErrSuperseded) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// versionName is the checkpoint name of version v of projector name.
func versionName(name string, v int) string {
	if v <= 1 {
		return name
	}
	return fmt.Sprintf("%s@v%d", name, v)
}

func markedForReplay(ps []ParkedEvent) bool {
	for _, pe := range ps {
		if pe.Replay {
			return true
		}
	}
	return false
}

package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/eventsource-go/eventsource"
)

// Status is where a persistent projection stands as far as its control
// requests go: the state asked for, not whether an instance is processing
// it now. That is Checkpoint.Holder: StatusRunning stays when Run returns
// (its context ended, or its process died and its lease ran out), so the
// next Run resumes, but Holder is then empty.
type Status string

const (
	StatusNew       Status = ""          // never run
	StatusRunning   Status = "running"   // to run: processing while an instance holds the lease (Checkpoint.Holder), waiting for one otherwise
	StatusStopped   Status = "stopped"   // stopped on request; Start lets it run again
	StatusResetting Status = "resetting" // rebuilding from position 0
	StatusDeleting  Status = "deleting"  // removing its read model and checkpoint
	StatusFaulted   Status = "faulted"   // a handler failed; see Checkpoint.Error
	// StatusSuperseded: a newer version of the projector took over
	// (blue/green rebuild); this version's read model no longer follows
	// the log and may be dropped.
	StatusSuperseded Status = "superseded"
	// StatusDropped: a superseded version whose read model was dropped.
	StatusDropped Status = "dropped"
)

// Request is a control request left in the checkpoint store for whichever
// instance runs the projection (it may be in another process).
type Request string

const (
	RequestNone   Request = ""
	RequestStop   Request = "stop"
	RequestReset  Request = "reset"
	RequestDelete Request = "delete"
	RequestSkip   Request = "skip"   // skip the event that faulted the projection
	RequestReplay Request = "replay" // apply the parked events marked Replay again
)

// Errors of persistent projections.
var (
	ErrLeaseHeld = errors.New("projection: lease held by another instance")
	ErrLeaseLost = errors.New("projection: lease lost")
	ErrStopped   = errors.New("projection: stopped")
	ErrDeleted   = errors.New("projection: deleted")
	ErrFaulted   = errors.New("projection: faulted")
	// ErrSuperseded: a newer version of the projector took over; Run of
	// the old version returns it.
	ErrSuperseded = errors.New("projection: superseded by a newer version")
	// ErrLive: the version asked to be dropped is the one serving reads.
	ErrLive = errors.New("projection: version is live")
	// ErrParkingFull: a projector would park more events than its limit
	// (WithParkingLimit); it faults instead.
	ErrParkingFull = errors.New("projection: too many parked events")
	// ErrNotParked: ReplayParked or DiscardParked named a position that is
	// not parked.
	ErrNotParked = errors.New("projection: event not parked")
	// ErrIncomplete: a new version's delivery check (Verify, before it
	// takes over) found an event missed or handled twice; see
	// IncompleteError.
	ErrIncomplete = errors.New("projection: delivery check failed")
)

// FaultError is returned by Run when a handler failed for good. It matches
// ErrFaulted and the handler's error.
type FaultError struct {
	Name     string
	Position uint64 // the event that failed
	Err      error
}

func (e *FaultError) Error() string {
	return fmt.Sprintf("projection %q faulted at position %d: %v", e.Name, e.Position, e.Err)
}

// Unwrap returns ErrFaulted and the handler's error.
func (e *FaultError) Unwrap() []error { return []error{ErrFaulted, e.Err} }

// Checkpoint is what a checkpoint store keeps for one projection.
type Checkpoint struct {
	Name       string
	Position   uint64    // last position handled; 0 before the first
	State      []byte    // encoded state of a Projection; nil for read models
	Status     Status    //
	Error      string    // why it faulted
	FaultedAt  uint64    // position of the event that faulted it; kept after Start until that event is handled or skipped
	Skipped    []uint64  // positions skipped on request, oldest first
	Request    Request   // pending control request
	Owner      string    // last lease holder, "" when released; its lease may have expired
	LeaseUntil time.Time // lease expiry
	UpdatedAt  time.Time
	// Holder is the instance running the projection now: Owner while its
	// lease is unexpired, by the store's clock when Load read it, and ""
	// when no instance holds the lease (never run, released when Run
	// returned, or expired because its holder died or stopped renewing).
	// Load sets it; Save ignores it.
	Holder string

	// What a projector keeps beyond Position; a checkpoint store saves it
	// as one value (MarshalProgress). Folded projections leave it empty.

	// Done: positions above Position already handled. A parallel
	// projector's workers commit out of order; Position is the low-water
	// mark below which everything is handled.
	Done []Range
	// Digests: per range of positions (cells of DigestRange positions,
	// joined up to DigestRange events once handled), the running digest of
	// the events handled (applied, filtered out by Where, skipped or
	// parked), from position DigestsFrom on, for Verify. Filter is the
	// store filter they cover.
	Digests     []Digest
	DigestsFrom uint64
	DigestRange uint64
	Filter      *eventsource.Filter
	// Parked: events set aside by the error policy, oldest first.
	Parked []ParkedEvent
	// Live: on the row of a projector's first version (its plain name),
	// the version serving reads; 0 means version 1.
	Live int
	// Version: the projector version this checkpoint belongs to (0 and 1
	// are the first).
	Version int
	// Horizon and HorizonDone: side effects run only for events above
	// Horizon that are not in HorizonDone: history replayed on a first
	// run, a reset or a blue/green rebuild, or already handled by the
	// version this one took over from, is not acted on again.
	Horizon     uint64
	HorizonDone []Range
}

// CheckpointStore keeps checkpoints and leases of persistent projections. All methods
// are safe for concurrent use, also across processes for the SQL stores.
type CheckpointStore interface {
	// Load returns the projection's checkpoint; a projection never run has
	// a zero one (StatusNew) and no error. It sets Holder to Owner if and
	// only if the lease is unexpired by the clock Acquire judges leases
	// with: Acquire by another owner would get ErrLeaseHeld.
	Load(ctx context.Context, name string) (Checkpoint, error)
	// Acquire takes the lease on name for owner until now+ttl, or renews
	// it. Another owner's unexpired lease is ErrLeaseHeld.
	Acquire(ctx context.Context, name, owner string, ttl time.Duration) error
	// Release gives the lease up if owner holds it.
	Release(ctx context.Context, name, owner string) error
	// Save writes cp's Position, State, Status, Error, FaultedAt and Skipped
	// if owner holds the lease (ErrLeaseLost otherwise), clears the pending
	// request if it equals handled, and returns the request still pending.
	Save(ctx context.Context, owner string, cp Checkpoint, handled Request) (Request, error)
	// Request leaves a control request for the projection's runner; Start
	// (a RequestNone with status stopped or faulted) is SetStatus.
	Request(ctx context.Context, name string, r Request) error
	// SetStatus sets the status (and clears Error) without a lease: used to
	// start a stopped or faulted projection again.
	SetStatus(ctx context.Context, name string, s Status) error
	// Delete removes the projection's checkpoint.
	Delete(ctx context.Context, name string) error
}

// TxCheckpointStore is a CheckpointStore whose checkpoint can be written inside the read
// model's own transaction: the read model's writes and the checkpoint
// commit together, so each event is applied exactly once.
type TxCheckpointStore[Tx any] interface {
	CheckpointStore
	// InTx runs fn in a transaction, committing if it returns nil.
	InTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// SaveTx is Save inside tx. It locks the projection's row, so an
	// instance that lost its lease cannot commit.
	SaveTx(ctx context.Context, tx Tx, owner string, cp Checkpoint, handled Request) (Request, error)
	// LoadTx reads the projection's checkpoint inside tx, creating its row
	// if there is none, and locks the row until tx ends.
	LoadTx(ctx context.Context, tx Tx, name string) (Checkpoint, error)
	// WriteTx writes every field Save writes, and Request, inside tx
	// without looking at the lease: the caller locked the row with LoadTx
	// and changes what it read.
	WriteTx(ctx context.Context, tx Tx, cp Checkpoint) error
}

// CheckpointLister is a CheckpointStore that lists its checkpoints: every
// store of this module and pgcheckpoint. Operators' tools (the eventsource
// command's projections list) use it.
type CheckpointLister interface {
	// List returns every checkpoint, by name.
	List(ctx context.Context) ([]Checkpoint, error)
}

// MemoryCheckpointStore is a CheckpointStore in process memory, for tests and for projections
// whose state may be rebuilt at each start.
type MemoryCheckpointStore struct {
	mu  sync.Mutex
	cps map[string]Checkpoint
	now func() time.Time
}

// NewMemoryCheckpointStore returns an empty MemoryCheckpointStore.
func NewMemoryCheckpointStore() *MemoryCheckpointStore {
	return &MemoryCheckpointStore{cps: map[string]Checkpoint{}, now: time.Now}
}

// Load implements CheckpointStore.
func (m *MemoryCheckpointStore) Load(ctx context.Context, name string) (Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return Checkpoint{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cp, ok := m.cps[name]
	if !ok {
		return Checkpoint{Name: name}, nil
	}
	cp.State = slices.Clone(cp.State)
	cp.Skipped = slices.Clone(cp.Skipped)
	cp = cloneProgress(cp)
	if cp.Owner != "" && m.now().Before(cp.LeaseUntil) {
		cp.Holder = cp.Owner
	}
	return cp, nil
}

// Acquire implements CheckpointStore.
func (m *MemoryCheckpointStore) Acquire(ctx context.Context, name, owner string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := m.cps[name]
	now := m.now()
	if cp.Owner != "" && cp.Owner != owner && now.Before(cp.LeaseUntil) {
		return fmt.Errorf("%w: %q by %q until %s", ErrLeaseHeld, name, cp.Owner, cp.LeaseUntil.Format(time.RFC3339))
	}
	cp.Name, cp.Owner, cp.LeaseUntil = name, owner, now.Add(ttl)
	m.cps[name] = cp
	return nil
}

// Release implements CheckpointStore.
func (m *MemoryCheckpointStore) Release(ctx context.Context, name, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cp, ok := m.cps[name]; ok && cp.Owner == owner {
		cp.Owner, cp.LeaseUntil = "", time.Time{}
		m.cps[name] = cp
	}
	return nil
}

// Save implements CheckpointStore.
func (m *MemoryCheckpointStore) Save(ctx context.Context, owner string, cp Checkpoint, handled Request) (Request, error) {
	if err := ctx.Err(); err != nil {
		return RequestNone, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.cps[cp.Name]
	if !ok || cur.Owner != owner {
		return RequestNone, fmt.Errorf("%w: %q", ErrLeaseLost, cp.Name)
	}
	cur.Position, cur.State, cur.Status = cp.Position, slices.Clone(cp.State), cp.Status
	cur.Error, cur.FaultedAt, cur.Skipped = cp.Error, cp.FaultedAt, slices.Clone(cp.Skipped)
	setProgress(&cur, cloneProgress(cp))
	if handled != RequestNone && cur.Request == handled {
		cur.Request = RequestNone
	}
	cur.UpdatedAt = m.now()
	m.cps[cp.Name] = cur
	return cur.Request, nil
}

// List implements CheckpointLister.
func (m *MemoryCheckpointStore) List(ctx context.Context) ([]Checkpoint, error) {
	m.mu.Lock()
	names := make([]string, 0, len(m.cps))
	for name := range m.cps {
		names = append(names, name)
	}
	m.mu.Unlock()
	slices.Sort(names)
	out := make([]Checkpoint, 0, len(names))
	for _, name := range names {
		cp, err := m.Load(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	return out, nil
}

// Request implements CheckpointStore.
func (m *MemoryCheckpointStore) Request(ctx context.Context, name string, r Request) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := m.cps[name]
	cp.Name, cp.Request = name, r
	m.cps[name] = cp
	return nil
}

// SetStatus implements CheckpointStore.
func (m *MemoryCheckpointStore) SetStatus(ctx context.Context, name string, s Status) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := m.cps[name]
	cp.Name, cp.Status, cp.Error = name, s, ""
	m.cps[name] = cp
	return nil
}

// Delete implements CheckpointStore.
func (m *MemoryCheckpointStore) Delete(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cps, name)
	return nil
}

// setProgress copies what MarshalProgress encodes from src to dst.
func setProgress(dst *Checkpoint, src Checkpoint) {
	dst.Done, dst.Digests, dst.DigestsFrom, dst.DigestRange, dst.Filter = src.Done, src.Digests, src.DigestsFrom, src.DigestRange, src.Filter
	dst.Parked, dst.Live, dst.Version, dst.Horizon, dst.HorizonDone = src.Parked, src.Live, src.Version, src.Horizon, src.HorizonDone
}

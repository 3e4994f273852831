package projection

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
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

// SideEffects is what a ReadModel implements to act on events beyond its
// own writes (an outbox row, a message). SideEffects runs in the same
// transaction as Apply, after it, for the events the version serving reads
// applies above its horizon: history replayed on a first run, a reset or a
// blue/green rebuild is not acted on, and at a take-over the new version
// acts exactly on the events the old one had not (in-transaction effects
// happen exactly once; effects outside the database at least once).
type SideEffects[Tx any] interface {
	SideEffects(ctx context.Context, tx Tx, records []eventsource.Record) error
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

// apply is a control commit (status, request, skip): what the workers and
// lease-free calls (DiscardParked) merged into the row is kept.
func (a *readModelApplier[Tx]) apply(ctx context.Context, owner string, recs []eventsource.Record, cp Checkpoint, handled Request) (req Request, err error) {
	err = a.cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		cur, err := a.cps.LoadTx(ctx, tx, cp.Name)
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			if err := a.rm.Apply(ctx, tx, recs); err != nil {
				return err
			}
		}
		setProgress(&cp, cur)
		cp.Skipped = unionSorted(cur.Skipped, cp.Skipped)
		req, err = a.cps.SaveTx(ctx, tx, owner, cp, handled)
		return err
	})
	return req, err
}

// unionSorted returns the positions in a or b, in order, once each.
func unionSorted(a, b []uint64) []uint64 {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func (a *readModelApplier[Tx]) reset(ctx context.Context, owner string, cp Checkpoint) error {
	return a.cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		cur, err := a.cps.LoadTx(ctx, tx, cp.Name)
		if err != nil {
			return err
		}
		if err := a.rm.Reset(ctx, tx); err != nil {
			return err
		}
		cp.Live, cp.Version = cur.Live, cur.Version
		_, err = a.cps.SaveTx(ctx, tx, owner, cp, RequestReset)
		return err
	})
}

func (a *readModelApplier[Tx]) remove(ctx context.Context) error {
	return a.cps.InTx(ctx, func(ctx context.Context, tx Tx) error { return a.rm.Delete(ctx, tx) })
}

// follow runs the pipeline (parallel.go) until ctx ends, a request
// arrives, the version is superseded or a handler faults.
func (a *readModelApplier[Tx]) follow(ctx context.Context, s *session) error {
	p := newPipeline(ctx, s, a.rm, a.cps)
	if err := p.start(); err != nil {
		return err
	}
	go func() { // look for requests left by other processes, and for a take-over
		for storekit.Sleep(p.ctx, s.poll) == nil {
			latest, err := s.cps.Load(p.ctx, s.name)
			switch {
			case err != nil:
			case latest.Status == StatusSuperseded || latest.Status == StatusDropped:
				p.cancel(ErrSuperseded)
				return
			case latest.Request != RequestNone:
				p.cancel(errRequest)
				return
			}
		}
	}()
	return p.run()
}

// replay applies the parked events marked for replay, in order, each in
// its own transaction; one that fails again stays parked (and so do the
// events of its key behind it).
func (a *readModelApplier[Tx]) replay(ctx context.Context, s *session) error {
	p := newPipeline(ctx, s, a.rm, a.cps)
	p.replay = true
	defer p.cancel(nil)
	if err := p.start(); err != nil {
		return err
	}
	failed := map[string]bool{}
	for _, pe := range p.durable.Parked {
		if !pe.Replay {
			continue
		}
		pl := planned{item: item{key: pe.Key, apply: true}, parked: pe}
		rec, found, err := readAt(p.ctx, s.events, pe.Position)
		switch {
		case err != nil:
			return err
		case !found:
			pl.rec, pl.out = eventsource.Record{Position: pe.Position}, discarded
			s.log.WarnContext(ctx, "projection: parked event no longer in the log; discarded", slog.String("projection", s.name), slog.Uint64("position", pe.Position))
		case failed[pe.Key] && !s.policy.ParkedKeyContinues:
			pl.rec, pl.out = rec, reparked
			pl.parked.Replay = false
		default:
			pl.rec, pl.out = rec, replayed
		}
		err = p.commitRetrying(-1, []planned{pl})
		if err != nil && retryable(err) && pl.out == replayed {
			failed[pe.Key] = true
			pl.out = reparked
			pl.parked.Replay, pl.parked.Error, pl.parked.Attempts, pl.parked.At = false, err.Error(), pe.Attempts+s.policy.Retries+1, time.Now().UTC()
			err = p.commit(-1, []planned{pl})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readAt reads the record at position pos of the log.
func readAt(ctx context.Context, events eventsource.Store, pos uint64) (eventsource.Record, bool, error) {
	for r, err := range events.ReadAll(ctx, pos, eventsource.Filter{}) {
		if err != nil {
			return eventsource.Record{}, false, err
		}
		return r, r.Position == pos, nil
	}
	return eventsource.Record{}, false, nil
}

package projection

import (
	"context"

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

package projection

import (
	"context"
	"fmt"
	"slices"
)

// Parked events. A Projector whose ErrorPolicy parks keeps the events it
// gave up on in its checkpoint (Checkpoint.Parked): the event that failed,
// with the error, the attempts and the time, and the events of its key
// parked behind it to keep their order. ReplayParked and DiscardParked
// change that list without the lease, in the checkpoint row's own lock, so
// an operator's process (the eventsource command) can steer a projector
// another process runs.

// Parked returns the parked events of projector name, oldest first.
func Parked(ctx context.Context, cps CheckpointStore, name string) ([]ParkedEvent, error) {
	cp, err := cps.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	return cp.Parked, nil
}

// ReplayParked asks the projector running name to apply parked events
// again: those at positions, or all of them when none is given. The
// events parked behind one of them are replayed with it, in order. An
// event that fails again stays parked with its attempts counted, and the
// events of its key behind it stay too. A position that is not parked is
// an ErrNotParked.
func ReplayParked[Tx any](ctx context.Context, cps TxCheckpointStore[Tx], name string, positions ...uint64) error {
	return updateParked(ctx, cps, name, positions, func(cp *Checkpoint, chosen func(ParkedEvent) bool) {
		for i, pe := range cp.Parked {
			if chosen(pe) {
				cp.Parked[i].Replay = true
			}
		}
		askReplay(cp)
	})
}

// askReplay leaves the replay request unless another request is pending:
// that one is not overwritten, and the runner replays the events marked
// Replay whenever it starts following the log.
func askReplay(cp *Checkpoint) {
	if cp.Request == RequestNone {
		cp.Request = RequestReplay
	}
}

// DiscardParked gives parked events up for good: they are recorded in
// Checkpoint.Skipped and never applied. Events parked behind a discarded
// one are replayed, so their key flows again.
func DiscardParked[Tx any](ctx context.Context, cps TxCheckpointStore[Tx], name string, positions ...uint64) error {
	if len(positions) == 0 {
		return fmt.Errorf("%w: DiscardParked names no position", ErrNotParked)
	}
	return updateParked(ctx, cps, name, positions, func(cp *Checkpoint, chosen func(ParkedEvent) bool) {
		freed := map[uint64]bool{}
		kept := cp.Parked[:0:0]
		for _, pe := range cp.Parked {
			if slices.Contains(positions, pe.Position) {
				cp.Skipped = append(cp.Skipped, pe.Position)
				freed[pe.Position] = true
				continue
			}
			kept = append(kept, pe)
		}
		replay := false
		for i, pe := range kept {
			if freed[pe.Behind] {
				kept[i].Replay, replay = true, true
			}
		}
		slices.Sort(cp.Skipped)
		cp.Skipped = slices.Compact(cp.Skipped)
		cp.Parked = kept
		if replay {
			askReplay(cp)
		}
	})
}

func updateParked[Tx any](ctx context.Context, cps TxCheckpointStore[Tx], name string, positions []uint64, change func(*Checkpoint, func(ParkedEvent) bool)) error {
	return cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		cp, err := cps.LoadTx(ctx, tx, name)
		if err != nil {
			return err
		}
		if len(cp.Parked) == 0 {
			return fmt.Errorf("%w: %q has no parked events", ErrNotParked, name)
		}
		for _, pos := range positions {
			if !parkedAt(cp.Parked, pos) {
				return fmt.Errorf("%w: position %d of %q", ErrNotParked, pos, name)
			}
		}
		heads := map[uint64]bool{}
		for _, pos := range positions {
			heads[pos] = true
		}
		chosen := func(pe ParkedEvent) bool {
			return len(positions) == 0 || heads[pe.Position] || heads[pe.Behind]
		}
		change(&cp, chosen)
		return cps.WriteTx(ctx, tx, cp)
	})
}

// Parked returns this projector's parked events, oldest first.
func (p *Projector[Tx]) Parked(ctx context.Context) ([]ParkedEvent, error) {
	return Parked(ctx, p.cps, p.name)
}

// ReplayParked is ReplayParked for this projector.
func (p *Projector[Tx]) ReplayParked(ctx context.Context, positions ...uint64) error {
	return ReplayParked(ctx, p.app.(*readModelApplier[Tx]).cps, p.name, positions...)
}

// DiscardParked is DiscardParked for this projector.
func (p *Projector[Tx]) DiscardParked(ctx context.Context, positions ...uint64) error {
	return DiscardParked(ctx, p.app.(*readModelApplier[Tx]).cps, p.name, positions...)
}

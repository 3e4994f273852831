package projection

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/eventsource-go/eventsource"
)

// Blue/green rebuilds. Version n of a projector keeps its checkpoint under
// "name@vn" and its read model wherever its ReadModel writes (its own
// tables). The row of version 1 (the plain name) records which version is
// live. A version that is not live replays from position 0 with its side
// effects held back; once it has caught up, takeOver switches in one
// transaction: the old version's row says superseded (its next commit, and
// its poll, stop it with ErrSuperseded), the first row names the new
// version live, and the new version acts on exactly the side effects the
// old one had not acted on.

// takeOver makes this version live if it is not: it runs when the
// pipeline has caught up and every dispatched record is committed.
func (p *pipeline[Tx]) takeOver() error {
	if p.live {
		return nil
	}
	s := p.s
	// The completeness check first, outside the transaction: nothing is in
	// flight and no commit moves this version's checkpoint meanwhile.
	p.mu.Lock()
	dur := p.durable
	p.mu.Unlock()
	rep, err := verifyCheckpoint(p.ctx, s.events, dur)
	if err != nil {
		return err
	}
	if !rep.OK() {
		return &IncompleteError{Name: s.base, Version: s.version, Report: rep}
	}
	err = p.cps.InTx(p.ctx, func(ctx context.Context, tx Tx) error {
		base, err := p.cps.LoadTx(ctx, tx, s.base) // the first row: locked first by every take-over
		if err != nil {
			return err
		}
		liveV := max(base.Live, 1)
		if liveV == s.version {
			return nil
		}
		if liveV > s.version {
			return fmt.Errorf("%w: version %d of %q is live", ErrSuperseded, liveV, s.base)
		}
		old := base
		if liveV > 1 {
			if old, err = p.cps.LoadTx(ctx, tx, versionName(s.base, liveV)); err != nil {
				return err
			}
		}
		own, err := p.cps.LoadTx(ctx, tx, s.name)
		if err != nil {
			return err
		}
		if own.Owner != s.owner {
			return fmt.Errorf("%w: %q is held by %q", ErrLeaseLost, s.name, own.Owner)
		}
		// What the old version acted on: everything above its horizon up to
		// its position, and what it handled above that.
		oldHorizon, oldPos := old.Horizon, old.Position
		if old.DigestsFrom == 0 && old.Position == 0 { // it never ran
			oldHorizon, oldPos = own.Horizon, own.Horizon
		}
		acted := func(pos uint64) bool {
			return pos <= oldHorizon || ranges(old.HorizonDone).contains(pos) ||
				(pos <= oldPos || ranges(old.Done).contains(pos))
		}
		if se, ok := p.rm.(SideEffects[Tx]); ok && own.Position > oldPos {
			var recs []eventsource.Record
			for r, err := range s.events.ReadAll(ctx, oldPos+1, s.filter) {
				if err != nil {
					return err
				}
				if r.Position > own.Position {
					break
				}
				if !acted(r.Position) && matchAll(s.where, &r) && !parkedAt(own.Parked, r.Position) && !skippedAt(own.Skipped, r.Position) {
					recs = append(recs, r)
				}
			}
			if len(recs) > 0 {
				if err := se.SideEffects(ctx, tx, recs); err != nil {
					return err
				}
			}
		}
		var gap []Range
		if oldPos > own.Position {
			gap = []Range{{From: own.Position + 1, To: oldPos}}
		}
		hd := union(gap, ranges(old.Done).above(own.Position), ranges(old.HorizonDone).above(own.Position))
		own.Horizon, own.HorizonDone = own.Position, hd
		old.Status = StatusSuperseded
		if liveV == 1 {
			old.Live = s.version
		} else {
			base.Live = s.version
			if err := p.cps.WriteTx(ctx, tx, base); err != nil {
				return err
			}
		}
		if err := p.cps.WriteTx(ctx, tx, old); err != nil {
			return err
		}
		return p.cps.WriteTx(ctx, tx, own)
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.live = true
	p.mu.Unlock()
	s.log.InfoContext(p.ctx, "projection: version took over", slog.String("projection", s.base), slog.Int("version", s.version))
	return nil
}

func parkedAt(ps []ParkedEvent, pos uint64) bool {
	for _, pe := range ps {
		if pe.Position == pos {
			return true
		}
	}
	return false
}

func skippedAt(ps []uint64, pos uint64) bool {
	for _, p := range ps {
		if p == pos {
			return true
		}
	}
	return false
}

// LiveVersion returns the version of projector name that serves reads: 1
// until a newer version took over.
func LiveVersion(ctx context.Context, cps CheckpointStore, name string) (int, error) {
	cp, err := cps.Load(ctx, name)
	if err != nil {
		return 0, err
	}
	return max(cp.Live, 1), nil
}

// Version is the projector's version (WithVersion).
func (p *Projector[Tx]) Version() int { return p.version }

// LiveVersion returns the version of this projector that serves reads.
func (p *Projector[Tx]) LiveVersion(ctx context.Context) (int, error) {
	return LiveVersion(ctx, p.cps, p.base)
}

// Drop removes the read model and checkpoint of this version once a newer
// one has taken over (ErrLive while it serves). Version 1's checkpoint row
// stays, marked dropped: it names the live version.
func (p *Projector[Tx]) Drop(ctx context.Context) error {
	a := p.app.(*readModelApplier[Tx])
	err := a.cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		cur, err := a.cps.LoadTx(ctx, tx, p.name)
		if err != nil {
			return err
		}
		if cur.Status != StatusSuperseded && cur.Status != StatusDropped {
			return fmt.Errorf("%w: %q (status %q) has not been superseded", ErrLive, p.name, cur.Status)
		}
		if cur.Status == StatusSuperseded {
			if err := a.rm.Delete(ctx, tx); err != nil {
				return err
			}
		}
		return a.cps.WriteTx(ctx, tx, Checkpoint{Name: p.name, Status: StatusDropped, Live: cur.Live, Version: cur.Version})
	})
	if err != nil || p.version == 1 {
		return err
	}
	return p.cps.Delete(ctx, p.name)
}

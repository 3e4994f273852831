package projection

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// A Projector's follow is a pipeline: one dispatcher reads the log in
// order and hands each record to the worker of its partition key; each
// worker applies batches of its records in its own transactions. Every
// commit merges into the checkpoint row, locked inside the transaction
// (LoadTx): the positions it handled go into Done, and Position moves up to
// the low-water mark below which every dispatched record is committed, so
// a record is either in the read model and marked handled in the same
// transaction, or neither.

// item is one record on its way to a worker.
type item struct {
	rec   eventsource.Record
	key   string
	apply bool // matches the conditions and is not skipped on request
	skip  bool // in Checkpoint.Skipped: handled without applying
}

// outcome is what a commit does with an item.
type outcome uint8

const (
	applied   outcome = iota // applied to the read model
	passed                   // handled without applying: filtered out, or skipped on request
	skipped                  // skipped by the error policy (recorded in Skipped)
	parked                   // parked (recorded in Parked)
	replayed                 // a parked event applied again
	reparked                 // a parked event that failed again
	discarded                // a parked event whose record is gone from the log
)

type planned struct {
	item
	out    outcome
	parked ParkedEvent
}

// fifoEntry tracks a dispatched position until the low-water mark passes it.
type fifoEntry struct {
	pos   uint64
	owner int // the worker preparing a commit with it; -1 when none
	done  bool
}

type pipeline[Tx any] struct {
	s      *session
	parent context.Context
	rm     ReadModel[Tx]
	cps    TxCheckpointStore[Tx]
	ctx    context.Context
	cancel context.CancelCauseFunc
	queues []chan item

	mu       sync.Mutex
	cond     *sync.Cond
	fifo     []fifoEntry // dispatched, in position order, not yet below low
	last     uint64      // last position dispatched
	durable  Checkpoint  // the checkpoint as last committed
	capacity int
	fault    *FaultError
	live     bool          // this version serves: side effects run
	replay   bool          // replaying parked events on request: a pending request does not interrupt
	caughtAt uint64        // the last position dispatched when the dispatcher last caught up
	settle   chan struct{} // caughtUp to settler

	// Where the checkpoint started: what was handled above its position.
	done    ranges
	skipSet map[uint64]bool
}

// hook, when set (by tests), changes each batch before it is applied and
// digested: a planted delivery fault for Verify to find.
var hook func([]eventsource.Record) []eventsource.Record

func newPipeline[Tx any](ctx context.Context, s *session, rm ReadModel[Tx], cps TxCheckpointStore[Tx]) *pipeline[Tx] {
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	p := &pipeline[Tx]{s: s, parent: parent, rm: rm, cps: cps, ctx: ctx, cancel: cancel, durable: s.cp, last: s.cp.Position}
	p.cond = sync.NewCond(&p.mu)
	p.settle = make(chan struct{}, 1)
	p.capacity = max(s.workers*s.batch*4, 64)
	p.done = ranges(s.cp.Done).above(s.cp.Position)
	p.skipSet = map[uint64]bool{}
	for _, pos := range s.cp.Skipped {
		if pos > s.cp.Position {
			p.skipSet[pos] = true
		}
	}
	p.queues = make([]chan item, s.workers)
	for i := range p.queues {
		p.queues[i] = make(chan item, s.batch*2)
	}
	context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	return p
}

// start prepares the checkpoint for this session: digests start on a
// projector's first run (and after a reset), and so does the horizon of
// its side effects: the events committed before it are history.
func (p *pipeline[Tx]) start() error {
	s := p.s
	var head uint64
	if h, ok := eventsource.As[eventsource.HeadReader](s.events); ok && s.cp.DigestsFrom == 0 && s.cp.Position == 0 {
		var err error
		if head, err = h.Head(p.ctx); err != nil {
			return err
		}
	}
	var cp Checkpoint
	err := p.cps.InTx(p.ctx, func(ctx context.Context, tx Tx) error {
		var err error
		if cp, err = p.cps.LoadTx(ctx, tx, s.name); err != nil {
			return err
		}
		if cp.Owner != s.owner {
			return fmt.Errorf("%w: %q is held by %q", ErrLeaseLost, s.name, cp.Owner)
		}
		if cp.DigestsFrom == 0 {
			cp.DigestsFrom, cp.DigestRange = cp.Position+1, s.digestRange
			if cp.Position == 0 {
				cp.Horizon = head
			}
		}
		cp.Version, cp.Filter = s.version, &s.filter
		_, err = p.cps.SaveTx(ctx, tx, s.owner, cp, RequestNone)
		return err
	})
	if err != nil {
		return err
	}
	p.live = cp.Live <= 1
	if s.version > 1 {
		base, err := p.cps.Load(p.ctx, s.base)
		if err != nil {
			return err
		}
		p.live = base.Live == s.version
	}
	s.cp, p.durable, p.last = cp, cp, cp.Position
	p.done = ranges(cp.Done).above(cp.Position)
	for _, pos := range cp.Skipped {
		if pos > cp.Position {
			p.skipSet[pos] = true
		}
	}
	return nil
}

// worker returns the worker of a partition key.
func (p *pipeline[Tx]) worker(key string) int {
	if len(p.queues) == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(len(p.queues)))
}

// run follows the log until ctx ends, a request arrives (errRequest), the
// version is superseded or a handler faults.
func (p *pipeline[Tx]) run() error {
	defer p.cancel(nil)
	var wg sync.WaitGroup
	parkedAtStart := slices.Clone(p.durable.Parked)
	for w := range p.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.work(w, parkedAtStart); err != nil {
				p.cancel(err)
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); p.settler() }()
	s := p.s
	sub := NewSubscription(s.events, From(s.cp.Position+1), WithFilter(s.filter), WithPolling(s.minPoll, s.poll), OnCaughtUp(p.caughtUp))
	err := sub.Run(p.ctx, p.dispatch)
	for _, q := range p.queues {
		close(q)
	}
	if err != nil {
		p.cancel(err)
	}
	wg.Wait()
	if p.fault != nil {
		return p.faulted()
	}
	return context.Cause(p.ctx)
}

// dispatch hands one record to its worker, waiting while too many are in
// flight.
func (p *pipeline[Tx]) dispatch(ctx context.Context, rec eventsource.Record) error {
	p.mu.Lock()
	for len(p.fifo) >= p.capacity && ctx.Err() == nil {
		p.cond.Wait()
	}
	if err := ctx.Err(); err != nil {
		p.mu.Unlock()
		return err
	}
	handled := p.done.contains(rec.Position)
	p.fifo = append(p.fifo, fifoEntry{pos: rec.Position, owner: -1, done: handled})
	p.last = rec.Position
	if handled {
		p.advance()
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	it := item{rec: rec, key: p.s.partition(&rec), skip: p.skipSet[rec.Position]}
	it.apply = !it.skip && matchAll(p.s.where, &rec)
	select {
	case p.queues[p.worker(it.key)] <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// advance drops the committed entries at the front of the FIFO. Callers
// hold mu.
func (p *pipeline[Tx]) advance() {
	i := 0
	for i < len(p.fifo) && p.fifo[i].done {
		i++
	}
	if i > 0 {
		p.fifo = slices.Delete(p.fifo, 0, i)
		p.cond.Broadcast()
	}
}

// low is the low-water mark if worker w's commit goes through: the
// position below the first dispatched record that is neither committed nor
// in w's commit. Callers hold mu.
func (p *pipeline[Tx]) low(w int) uint64 {
	for _, e := range p.fifo {
		if !e.done && e.owner != w {
			return e.pos - 1
		}
	}
	return p.last
}

// mark notes that worker w prepares a commit of positions (owner -1: not any more).
func (p *pipeline[Tx]) mark(positions []uint64, owner int, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pos := range positions {
		i, ok := slices.BinarySearchFunc(p.fifo, pos, func(e fifoEntry, pos uint64) int {
			switch {
			case e.pos < pos:
				return -1
			case e.pos > pos:
				return 1
			}
			return 0
		})
		if ok {
			p.fifo[i].owner, p.fifo[i].done = owner, done
		}
	}
	if done {
		p.advance()
	}
}

// work is worker w: it takes what is queued for it, up to a batch at a
// time, and commits it.
func (p *pipeline[Tx]) work(w int, parkedAtStart []ParkedEvent) error {
	blocked := map[string]bool{} // keys waiting behind a parked event
	if !p.s.policy.ParkedKeyContinues {
		for _, pe := range parkedAtStart {
			if p.worker(pe.Key) == w {
				blocked[pe.Key] = true
			}
		}
	}
	q := p.queues[w]
	batch := make([]item, 0, p.s.batch)
	for {
		batch = batch[:0]
		select {
		case it, ok := <-q:
			if !ok {
				return nil
			}
			batch = append(batch, it)
		case <-p.ctx.Done():
			return nil
		}
	fill:
		for len(batch) < p.s.batch {
			select {
			case it, ok := <-q:
				if !ok {
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		if err := p.handle(w, blocked, batch); err != nil {
			return err
		}
	}
}

// handle commits batch with the error policy: retries, then one item at a
// time to find the one that fails, which is skipped, parked or faults the
// projector.
func (p *pipeline[Tx]) handle(w int, blocked map[string]bool, batch []item) error {
	plan := make([]planned, len(batch))
	for i, it := range batch {
		plan[i] = planned{item: it, out: passed}
		switch {
		case it.apply && blocked[it.key]:
			plan[i].out = parked
			plan[i].parked = p.parkedEvent(it, nil, 0, p.behind(it.key))
		case it.apply:
			plan[i].out = applied
		}
	}
	err := p.commitRetrying(w, plan)
	if err == nil || !retryable(err) {
		return err
	}
	if len(batch) > 1 {
		for i := range batch {
			if err := p.handle(w, blocked, batch[i:i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	it := plan[0]
	pol := p.s.policy
	switch {
	case pol.Skip:
		p.s.log.WarnContext(p.ctx, "projection: skipping event", slog.String("projection", p.s.name), slog.Uint64("position", it.rec.Position), slog.String("error", err.Error()))
		it.out = skipped
	case pol.Park:
		p.s.log.WarnContext(p.ctx, "projection: parking event", slog.String("projection", p.s.name), slog.Uint64("position", it.rec.Position), slog.String("error", err.Error()))
		it.out, it.parked = parked, p.parkedEvent(it.item, err, pol.Retries+1, 0)
	default:
		p.mu.Lock()
		if p.fault == nil || it.rec.Position < p.fault.Position {
			p.fault = &FaultError{Name: p.s.name, Position: it.rec.Position, Err: err}
		}
		p.mu.Unlock()
		return err
	}
	if err := p.commit(w, []planned{it}); err != nil {
		if errors.Is(err, ErrParkingFull) {
			p.mu.Lock()
			if p.fault == nil || it.rec.Position < p.fault.Position {
				p.fault = &FaultError{Name: p.s.name, Position: it.rec.Position, Err: err}
			}
			p.mu.Unlock()
		}
		return err
	}
	if it.out == parked && !pol.ParkedKeyContinues {
		blocked[it.key] = true
	}
	return nil
}

// behind is the position of the parked event key waits behind.
func (p *pipeline[Tx]) behind(key string) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pe := range p.durable.Parked {
		if pe.Key == key {
			return pe.Position
		}
	}
	return 0
}

func (p *pipeline[Tx]) parkedEvent(it item, err error, attempts int, behind uint64) ParkedEvent {
	pe := ParkedEvent{Position: it.rec.Position, Stream: it.rec.StreamID, Type: it.rec.Type, Key: it.key, Attempts: attempts, At: time.Now().UTC(), Behind: behind}
	if err != nil {
		pe.Error = err.Error()
	}
	return pe
}

// commitRetrying is commit with the error policy's retries.
func (p *pipeline[Tx]) commitRetrying(w int, plan []planned) error {
	err := p.commit(w, plan)
	for attempt, wait := 0, p.s.policy.Backoff; err != nil && attempt < p.s.policy.Retries && retryable(err); attempt++ {
		if serr := storekit.Sleep(p.ctx, wait); serr != nil {
			return serr
		}
		wait *= 2
		err = p.commit(w, plan)
	}
	return err
}

// commit applies plan's records and merges plan into the checkpoint, in
// one transaction.
func (p *pipeline[Tx]) commit(w int, plan []planned) error {
	positions := make([]uint64, 0, len(plan))
	for _, pl := range plan {
		positions = append(positions, pl.rec.Position)
	}
	p.mu.Lock()
	for _, pos := range positions { // mark without the lock dance of mark
		if i, ok := slices.BinarySearchFunc(p.fifo, pos, cmpEntry); ok {
			p.fifo[i].owner = w
		}
	}
	low := p.low(w)
	live := p.live
	p.mu.Unlock()

	var merged Checkpoint
	var req Request
	err := p.cps.InTx(p.ctx, func(ctx context.Context, tx Tx) error {
		// The read model first, the checkpoint row last: its lock is held
		// only for the end of each transaction, so workers apply in
		// parallel and queue only to merge and commit.
		recs, err := p.applyTx(ctx, tx, plan)
		if err != nil {
			return err
		}
		cur, err := p.cps.LoadTx(ctx, tx, p.s.name)
		if err != nil {
			return err
		}
		if cur.Owner != p.s.owner {
			return fmt.Errorf("%w: %q is held by %q", ErrLeaseLost, p.s.name, cur.Owner)
		}
		if cur.Status == StatusSuperseded || cur.Status == StatusDropped {
			return ErrSuperseded
		}
		if err := p.effects(ctx, tx, recs, cur, live); err != nil {
			return err
		}
		merged = p.merge(cur, plan, low)
		if len(merged.Parked) > len(cur.Parked) && len(merged.Parked) > p.s.parkLimit {
			return fmt.Errorf("%w: %d parked, the limit is %d (WithParkingLimit)", ErrParkingFull, len(merged.Parked), p.s.parkLimit)
		}
		// The row is locked and its owner checked: write it as merged
		// (SaveTx would read it again).
		merged.Request, req = cur.Request, cur.Request
		return p.cps.WriteTx(ctx, tx, merged)
	})
	if err != nil {
		p.mark(positions, -1, false)
		return err
	}
	p.mark(positions, -1, true)
	p.committed(merged, req)
	return nil
}

func cmpEntry(e fifoEntry, pos uint64) int {
	switch {
	case e.pos < pos:
		return -1
	case e.pos > pos:
		return 1
	}
	return 0
}

// applyTx applies the records plan applies and returns them.
func (p *pipeline[Tx]) applyTx(ctx context.Context, tx Tx, plan []planned) ([]eventsource.Record, error) {
	var recs []eventsource.Record
	for _, pl := range plan {
		if pl.out == applied || pl.out == replayed {
			recs = append(recs, pl.rec)
		}
	}
	if hook != nil {
		recs = hook(recs)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	return recs, p.rm.Apply(ctx, tx, recs)
}

// effects runs the side effects of recs, if the read model has any and
// this version serves, for those above the checkpoint's horizon.
func (p *pipeline[Tx]) effects(ctx context.Context, tx Tx, recs []eventsource.Record, cur Checkpoint, live bool) error {
	se, ok := p.rm.(SideEffects[Tx])
	if !ok || !live || len(recs) == 0 {
		return nil
	}
	effects := recs[:0:0]
	for _, r := range recs {
		if r.Position > cur.Horizon && !ranges(cur.HorizonDone).contains(r.Position) {
			effects = append(effects, r)
		}
	}
	if len(effects) == 0 {
		return nil
	}
	return se.SideEffects(ctx, tx, effects)
}

// merge returns cur with plan handled and the low-water mark raised to low.
func (p *pipeline[Tx]) merge(cur Checkpoint, plan []planned, low uint64) Checkpoint {
	next := cloneProgress(cur)
	next.Skipped = slices.Clone(cur.Skipped)
	next.Status, next.Error = StatusRunning, ""
	next.Filter = &p.s.filter
	if next.DigestRange == 0 {
		next.DigestRange = p.s.digestRange
	}
	done := ranges(next.Done)
	digested := plan
	if hook != nil {
		digested = p.hooked(plan)
	}
	for _, pl := range digested {
		if pl.out == replayed || pl.out == reparked || pl.out == discarded {
			continue // digested when it was parked
		}
		if next.DigestsFrom != 0 && pl.rec.Position >= next.DigestsFrom {
			next.Digests = addDigest(next.Digests, next.DigestRange, &pl.rec)
		}
	}
	for _, pl := range plan {
		pos := pl.rec.Position
		switch pl.out {
		case skipped:
			next.Skipped = append(next.Skipped, pos)
		case parked:
			next.Parked = append(next.Parked, pl.parked)
		case replayed, discarded:
			next.Parked = slices.DeleteFunc(next.Parked, func(pe ParkedEvent) bool { return pe.Position == pos })
			if pl.out == discarded {
				next.Skipped = append(next.Skipped, pos)
			}
			continue
		case reparked:
			for i := range next.Parked {
				if next.Parked[i].Position == pos {
					next.Parked[i] = pl.parked
				}
			}
			continue
		}
		if pos > next.Position {
			done = done.add(pos)
		}
	}
	next.Position = max(next.Position, low)
	next.Done = p.coalesce(done.above(next.Position))
	next.Digests = compactDigests(next.Digests, next.Position, next.DigestRange)
	if next.FaultedAt != 0 && (next.FaultedAt <= next.Position || done.contains(next.FaultedAt)) {
		next.FaultedAt = 0 // the event that faulted it is handled now
	}
	slices.SortFunc(next.Parked, func(a, b ParkedEvent) int { return cmpUint(a.Position, b.Position) })
	return next
}

// coalesce joins neighbouring ranges of done with no record between them
// that this session dispatched and has not committed: where positions are
// sparse (PostgreSQL's), records committed out of order would otherwise
// leave a range per append. A gap joins only below the last record
// dispatched, so every record the log holds there (through the filter)
// has been dispatched and is in the FIFO or committed.
func (p *pipeline[Tx]) coalesce(done ranges) ranges {
	if len(done) < 2 {
		return done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := done[:1]
	for _, r := range done[1:] {
		last := &out[len(out)-1]
		if r.From <= p.last && !p.inFlight(last.To, r.From) {
			last.To = r.To
			continue
		}
		out = append(out, r)
	}
	return out
}

// inFlight reports whether the FIFO holds a record in (a, b) that is not
// committed. Callers hold mu.
func (p *pipeline[Tx]) inFlight(a, b uint64) bool {
	i, _ := slices.BinarySearchFunc(p.fifo, a+1, cmpEntry)
	for ; i < len(p.fifo) && p.fifo[i].pos < b; i++ {
		if !p.fifo[i].done {
			return true
		}
	}
	return false
}

// hooked is plan as the test hook changed it: what was really applied is
// what is digested.
func (p *pipeline[Tx]) hooked(plan []planned) []planned {
	var recs []eventsource.Record
	var rest []planned
	for _, pl := range plan {
		if pl.out == applied {
			recs = append(recs, pl.rec)
		} else {
			rest = append(rest, pl)
		}
	}
	for _, r := range hook(recs) {
		rest = append(rest, planned{item: item{rec: r}, out: applied})
	}
	return rest
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// committed notes a commit's checkpoint.
func (p *pipeline[Tx]) committed(cp Checkpoint, req Request) {
	p.mu.Lock()
	if cp.Position >= p.durable.Position {
		p.durable = cp
	}
	dur := p.durable
	p.mu.Unlock()
	dur.Request = req
	p.s.publish(dur)
	if req != RequestNone && !p.replay {
		p.cancel(errRequest)
	}
}

// caughtUp runs on the dispatcher when it has read everything committed.
// A version that serves goes on reading at once: the settler waits for
// the commits, compacts the checkpoint and calls the user's OnCaughtUp,
// so a live projector's reads never wait for its commits. A version that
// is rebuilding waits here, with nothing in flight, and takes over.
func (p *pipeline[Tx]) caughtUp() {
	p.mu.Lock()
	live := p.live
	p.caughtAt = p.last
	p.mu.Unlock()
	if live {
		select {
		case p.settle <- struct{}{}:
		default: // the settler will see the newest caughtAt
		}
		return
	}
	if !p.settled(p.last) {
		return
	}
	if err := p.takeOver(); err != nil {
		p.cancel(err)
		return
	}
	if p.s.onCaughtUp != nil {
		p.s.onCaughtUp()
	}
}

// settler serves caughtUp's signals of a live version.
func (p *pipeline[Tx]) settler() {
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.settle:
		}
		p.mu.Lock()
		at := p.caughtAt
		p.mu.Unlock()
		if p.settled(at) && p.s.onCaughtUp != nil {
			p.s.onCaughtUp()
		}
	}
}

// settled waits until every record dispatched up to at is committed and
// makes the checkpoint say so (a compacting commit when the workers'
// commits left its low-water mark below at). false: the pipeline ended.
func (p *pipeline[Tx]) settled(at uint64) bool {
	p.mu.Lock()
	for len(p.fifo) > 0 && p.fifo[0].pos <= at && p.ctx.Err() == nil {
		p.cond.Wait()
	}
	dur := p.durable
	p.mu.Unlock()
	if p.ctx.Err() != nil {
		return false
	}
	if dur.Position < at || len(ranges(dur.Done)) > 0 && ranges(dur.Done)[0].From <= at {
		if err := p.commit(-2, nil); err != nil {
			p.cancel(err)
			return false
		}
	}
	return true
}

// faulted records the fault after the workers stopped and returns it.
func (p *pipeline[Tx]) faulted() error {
	f := p.fault
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 30*time.Second)
	defer cancel()
	if cause := context.Cause(p.ctx); p.parent.Err() != nil || errors.Is(cause, ErrLeaseLost) || errors.Is(cause, ErrSuperseded) {
		return errors.Join(f, cause) // the fault is found again by the next holder
	}
	err := p.cps.InTx(ctx, func(ctx context.Context, tx Tx) error {
		cur, err := p.cps.LoadTx(ctx, tx, p.s.name)
		if err != nil {
			return err
		}
		cur.Status, cur.Error, cur.FaultedAt = StatusFaulted, f.Err.Error(), f.Position
		_, err = p.cps.SaveTx(ctx, tx, p.s.owner, cur, RequestNone)
		if err == nil {
			p.s.publish(cur)
		}
		return err
	})
	if err != nil {
		return errors.Join(f, err)
	}
	return f
}

package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// Append implements eventsource.Store. An append is one JetStream message on
// the stream's subject, published with the expected last subject sequence of
// the commit that ends at the expected version, after the event IDs the
// caller supplied are claimed in the index (IDs the store generates need no
// claim). See the package documentation.
func (s *Store) Append(ctx context.Context, id string, expected eventsource.ExpectedVersion, records []eventsource.Record) (eventsource.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return eventsource.AppendResult{}, err
	}
	recs := make([]eventsource.Record, len(records))
	copy(recs, records)
	if err := storekit.ValidateAppend(id, expected, recs, s.Limits()); err != nil {
		return eventsource.AppendResult{}, err
	}
	supplied := 0
	for i := range recs {
		recs[i].StreamID = id
		if records[i].EventID == "" {
			recs[i].EventID = "" // generated: derived from the record's place when read
		} else {
			supplied++
		}
	}
	h, err := s.handles(ctx)
	if err != nil {
		return eventsource.AppendResult{}, err
	}
	a := appender{s: s, h: h, stream: id, expected: expected, recs: recs, supplied: supplied}
	res, err := a.run(ctx)
	if err != nil && a.releasable {
		a.release(ctx)
	}
	return res, err
}

type appender struct {
	s        *Store
	h        *streamHandles
	stream   string
	expected eventsource.ExpectedVersion
	recs     []eventsource.Record // an empty EventID is one the store generates
	supplied int                  // how many records carry the caller's event ID
	token    string               // this append's claims carry it; set by the first claim

	claimed    []uint64 // sequence of each record's claim in the index, 0 when none
	claimedAt  int64    // version the claims name for the first record
	releasable bool     // the claims may be released if the append fails
}

func (a *appender) run(ctx context.Context) (eventsource.AppendResult, error) {
	s := a.s
	cur, err := a.startHead(ctx)
	if err != nil {
		return eventsource.AppendResult{}, err
	}
	subject := s.streamSubject(a.stream)
	msgID := ""
	if a.supplied > 0 {
		msgID = commitID(a.stream, a.recs)
	}
	for attempt := 0; ; attempt++ {
		if cur.tomb {
			a.releasable = true
			return eventsource.AppendResult{}, storekit.Tombstoned(a.stream)
		}
		expected, err := a.resolve(ctx, cur)
		if err != nil {
			a.releasable = true
			return eventsource.AppendResult{}, err
		}
		if !expected.Matches(cur.version) {
			a.releasable = true
			if a.supplied > 0 {
				if res, done, err := s.retried(ctx, a.h, a.stream, expected, a.recs, a.token); done {
					return res, err
				}
			}
			return eventsource.AppendResult{}, &eventsource.ConcurrencyError{Stream: a.stream, Expected: a.expected, Actual: cur.version}
		}
		if err := a.claim(ctx, cur.version+1); err != nil {
			a.releasable = true
			var taken *claimedError
			if errors.As(err, &taken) {
				if res, done, rerr := s.retried(ctx, a.h, a.stream, expected, a.recs, a.token); done {
					return res, rerr
				}
			}
			return eventsource.AppendResult{}, err
		}
		storekit.BeforeCommit(ctx)
		if err := ctx.Err(); err != nil {
			a.releasable = true
			return eventsource.AppendResult{}, err
		}
		msg := &natsgo.Msg{Subject: subject, Data: encodeCommit(cur.version+1, a.recs, cur.ruled)}
		if msgID != "" {
			msg.Header = natsgo.Header{jetstream.MsgIDHeader: []string{msgID}}
		}
		ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(cur.seq))
		switch {
		case err == nil && ack.Duplicate:
			a.releasable = true
			return s.duplicateAck(ctx, a.h, a.stream, a.recs, ack.Sequence)
		case err == nil:
			n := int64(len(a.recs))
			s.heads.Put(a.stream, head{version: cur.version + n, seq: ack.Sequence, ruled: cur.ruled})
			s.changed.Fire()
			return eventsource.AppendResult{
				StreamID: a.stream, FirstVersion: cur.version + 1, LastVersion: cur.version + n,
				FirstPosition: ack.Sequence << 16, LastPosition: ack.Sequence<<16 | uint64(n-1),
			}, nil
		case wrongSeq(err):
			s.heads.Drop(a.stream)
			if err := backOff(ctx, attempt); err != nil {
				a.releasable = true
				return eventsource.AppendResult{}, err
			}
			if cur, err = s.readHead(ctx, a.h, a.stream); err != nil {
				a.releasable = true
				return eventsource.AppendResult{}, err
			}
		case apiCode(err) == 10054 || errors.Is(err, natsgo.ErrMaxPayload): // message size exceeds maximum allowed
			a.releasable = true
			return eventsource.AppendResult{}, fmt.Errorf("%w: stream %q: the server refused the append: %v", eventsource.ErrTooLarge, a.stream, err)
		default:
			// The message may or may not have been stored: keep the claims,
			// which a retry with the same event IDs recognises.
			return eventsource.AppendResult{}, fmt.Errorf("nats: append to stream %q: %w", a.stream, err)
		}
	}
}

// resolve is what the append's expected version means at cur: NoStream
// also accepts a soft-deleted stream (storekit.Retention.Expect), which only
// a stream with events and lifecycle state can be, so only that case reads
// the stream's lifecycle entry. The publish expects cur's sequence, so a
// lifecycle write landing since makes the append look again.
func (a *appender) resolve(ctx context.Context, cur head) (eventsource.ExpectedVersion, error) {
	if cur.seq == 0 && a.s.expires(a.h) {
		// The server expires old messages, a hard delete's marker too: the
		// index still says so.
		st, err := a.s.current(ctx, a.h, a.stream)
		if err != nil {
			return 0, err
		}
		if st.ret.Tombstoned() {
			return 0, storekit.Tombstoned(a.stream)
		}
	}
	if a.expected != eventsource.NoStream || cur.version == 0 || !cur.ruled {
		return a.expected, nil
	}
	st, err := a.s.current(ctx, a.h, a.stream)
	if err != nil {
		return 0, err
	}
	ret := st.at(cur.version)
	if ret.Tombstoned() {
		return 0, storekit.Tombstoned(a.stream)
	}
	return ret.Expect(a.expected, cur.version), nil
}

// startHead returns the stream's head the first attempt checks against:
// the cached one when the append expects an exact version and the cache
// holds the stream at it, else the one read from the server.
func (a *appender) startHead(ctx context.Context) (head, error) {
	if a.expected >= 0 {
		if c, ok := a.s.heads.Get(a.stream); ok && c.version == int64(a.expected) {
			return c, nil
		}
	}
	return a.s.readHead(ctx, a.h, a.stream)
}

// backOff waits before attempt+1 of an append that lost a race: not at all
// for the first few, then a jittered pause growing to a few milliseconds,
// so that writers racing one stream with eventsource.Any take turns.
func backOff(ctx context.Context, attempt int) error {
	if attempt < 3 {
		return ctx.Err()
	}
	return storekit.Sleep(ctx, time.Duration(rand.Int64N(int64(min(attempt, 50))*int64(100*time.Microsecond))+1))
}

// commitID is the Nats-Msg-Id of a commit with event IDs supplied by the
// caller: a hash of its stream and event IDs, so that the server's duplicate
// window drops a resent commit. (A commit of generated IDs cannot be resent:
// nobody else knows its IDs.)
func commitID(stream string, recs []eventsource.Record) string {
	h := sha256.New()
	h.Write([]byte(stream))
	for i := range recs {
		h.Write([]byte{0})
		h.Write([]byte(recs[i].EventID))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// duplicateAck handles a publish the server dropped as a duplicate of the
// message at seq (same stream, same event IDs, within the duplicate window).
func (s *Store) duplicateAck(ctx context.Context, h *streamHandles, stream string, recs []eventsource.Record, seq uint64) (eventsource.AppendResult, error) {
	m, err := h.events.GetMsg(ctx, seq)
	if err == nil && m.Subject == s.streamSubject(stream) {
		if c, derr := decodeCommit(m.Data, stream, m.Sequence, m.Time); derr == nil && len(c.recs) == len(recs) {
			same := true
			for i := range recs {
				same = same && c.recs[i].EventID == recs[i].EventID
			}
			if same {
				return resultOf(stream, c.recs), nil
			}
		}
	}
	return eventsource.AppendResult{}, fmt.Errorf("%w: stream %q: the server's duplicate window still holds a commit of these event IDs (message %d), which is no longer stored",
		eventsource.ErrDuplicateEvent, stream, seq)
}

func resultOf(stream string, recs []eventsource.Record) eventsource.AppendResult {
	return eventsource.AppendResult{
		StreamID: stream, FirstVersion: recs[0].Version, LastVersion: recs[len(recs)-1].Version,
		FirstPosition: recs[0].Position, LastPosition: recs[len(recs)-1].Position,
	}
}

// expires reports whether the events stream discards old messages
// (WithMaxAge, here or in the process that set it up).
func (s *Store) expires(h *streamHandles) bool {
	return s.cfg.maxAge > 0 || h.events.CachedInfo().Config.MaxAge > 0
}

// readHead reads the version of stream and the sequence of its last message
// (0, 0 for a stream with no message), and whether it has lifecycle state
// or is hard-deleted. A tombstone of an earlier version's DeleteStream there
// is a deletion whose purge did not finish: readHead finishes it, so that
// the stream never starts again while the commits of its deleted past
// remain.
func (s *Store) readHead(ctx context.Context, h *streamHandles, stream string) (head, error) {
	m, err := h.events.GetLastMsgForSubject(ctx, s.streamSubject(stream))
	if notFound(err) {
		return head{}, nil
	}
	if err != nil {
		return head{}, fmt.Errorf("nats: read the head of stream %q: %w", stream, err)
	}
	mi, err := parseMsg(m.Data)
	if err != nil {
		return head{}, &eventsource.DecodeError{Stream: stream, Err: err}
	}
	if mi.legacy {
		d := &deletion{s: s, h: h, stream: stream}
		if err := d.collect(ctx, m.Sequence-1, 0); err != nil {
			return head{}, err
		}
		if err := d.finish(ctx, m.Sequence); err != nil {
			return head{}, err
		}
		return head{}, nil
	}
	return head{version: mi.version, seq: m.Sequence, ruled: mi.ruled, tomb: mi.tomb}, nil
}

// claimedError says an event ID is claimed by another append.
type claimedError struct {
	eventID string
	by      claim
	stored  bool
}

func (e *claimedError) Error() string {
	if e.stored {
		return fmt.Sprintf("%v: event %q is already stored (%q version %d)", eventsource.ErrDuplicateEvent, e.eventID, e.by.stream, e.by.version)
	}
	return fmt.Sprintf("%v: event %q is being appended to %q at version %d by another append (or one that failed before its commit)",
		eventsource.ErrDuplicateEvent, e.eventID, e.by.stream, e.by.version)
}

func (e *claimedError) Unwrap() error { return eventsource.ErrDuplicateEvent }

// claim makes (or moves) the claims of the event IDs the caller supplied to
// name the versions from first on; generated IDs need none. Claims are
// published asynchronously, so n claims cost about one round trip.
func (a *appender) claim(ctx context.Context, first int64) error {
	if a.supplied == 0 || a.claimed != nil && a.claimedAt == first {
		return nil
	}
	if a.claimed == nil {
		if err := a.startClaims(ctx); err != nil {
			return err
		}
	}
	a.claimedAt = first
	if a.supplied == 1 { // one claim: a plain request is cheaper than the async machinery
		i := 0
		for a.recs[i].EventID == "" {
			i++
		}
		return a.claimOne(ctx, i, first)
	}
	return a.claimAsync(ctx, first)
}

// startClaims readies the first claim of an append: it refuses an ID in
// the layout the store generates that names a stored event, and sets the
// token the claims carry.
func (a *appender) startClaims(ctx context.Context) error {
	// An ID in the layout the store generates names its place: if that
	// place holds it, it is stored (and the index knows nothing of it).
	for i := range a.recs {
		if id := a.recs[i].EventID; id != "" {
			c, found, err := a.s.placeOf(ctx, a.h, id)
			if err != nil {
				return err
			}
			if found {
				return &claimedError{eventID: id, by: c, stored: true}
			}
		}
	}
	a.claimed = make([]uint64, len(a.recs))
	a.token = eventsource.NewEventID()
	return nil
}

// claimMsg is the claim of record i's event ID, naming version
// first+i.
func (a *appender) claimMsg(i int, first int64) *natsgo.Msg {
	data := encodeClaim(claim{stream: a.stream, version: first + int64(i), token: a.token})
	return &natsgo.Msg{Subject: a.s.claimSubject(a.recs[i].EventID), Data: data}
}

// claimOne publishes the claim of record i alone, by a plain request.
func (a *appender) claimOne(ctx context.Context, i int, first int64) error {
	ack, err := a.s.js.PublishMsg(ctx, a.claimMsg(i, first), jetstream.WithExpectLastSequencePerSubject(a.claimed[i]))
	switch {
	case err == nil:
		a.claimed[i] = ack.Sequence
		return nil
	case wrongSeq(err):
		return a.takeOver(ctx, i, first+int64(i))
	default:
		return fmt.Errorf("nats: claim event IDs of stream %q: %w", a.stream, err)
	}
}

// claimAsync publishes the claims of every supplied ID at once, then waits
// for their acks; a claim another append holds is taken over after.
func (a *appender) claimAsync(ctx context.Context, first int64) error {
	futures := make([]jetstream.PubAckFuture, len(a.recs))
	var firstErr error
	for i := range a.recs {
		if a.recs[i].EventID == "" {
			continue
		}
		f, err := a.s.js.PublishMsgAsync(a.claimMsg(i, first), jetstream.WithExpectLastSequencePerSubject(a.claimed[i]))
		if err != nil {
			firstErr = err
			break
		}
		futures[i] = f
	}
	var conflicts []int
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			a.claimed[i] = ack.Sequence
		case err := <-f.Err():
			if wrongSeq(err) {
				conflicts = append(conflicts, i)
			} else if firstErr == nil {
				firstErr = err
			}
		case <-ctx.Done():
			// Claims still in flight may land; they name this append's
			// placement, which a retry of it may take over.
			return ctx.Err()
		}
	}
	if firstErr != nil {
		return fmt.Errorf("nats: claim event IDs of stream %q: %w", a.stream, firstErr)
	}
	for _, i := range conflicts {
		if err := a.takeOver(ctx, i, first+int64(i)); err != nil {
			return err
		}
	}
	return nil
}

// placeOf finds the event an ID in the generated layout names: found is
// true when the record at that place has exactly this ID, and c then names
// its stream and version (with no token and no index sequence).
func (s *Store) placeOf(ctx context.Context, h *streamHandles, id string) (c claim, found bool, err error) {
	seq, idx, ok := parseGeneratedID(id)
	if !ok {
		return claim{}, false, nil
	}
	m, err := h.events.GetMsg(ctx, seq)
	if notFound(err) {
		return claim{}, false, nil // deleted (its ID is free again), or not written yet
	}
	if err != nil {
		return claim{}, false, fmt.Errorf("nats: look up event %q: %w", id, err)
	}
	stream, err := s.streamOf(m.Subject)
	if err != nil {
		return claim{}, false, nil
	}
	cm, err := decodeCommit(m.Data, stream, m.Sequence, m.Time)
	if err != nil || idx >= len(cm.recs) || cm.recs[idx].EventID != id {
		return claim{}, false, nil
	}
	return claim{stream: stream, version: cm.recs[idx].Version}, true, nil
}

// takeOver claims record i's event ID, held by another claim, if that claim
// is dead: it names a place now holding another event, or exactly the place
// this append is about to write (an earlier attempt of the same append whose
// commit never landed; both cannot land there).
func (a *appender) takeOver(ctx context.Context, i int, version int64) error {
	id := a.recs[i].EventID
	for round := 0; round < 5; round++ {
		c, found, err := a.s.readClaim(ctx, a.h, id)
		if err != nil {
			return err
		}
		expect := uint64(0)
		if found {
			if c.token != "" && c.token == a.token {
				a.claimed[i] = c.seq
				if c.version == version {
					return nil
				}
			} else {
				st, err := a.s.resolve(ctx, a.h, c, id)
				if err != nil {
					return err
				}
				switch {
				case st == claimStored:
					return &claimedError{eventID: id, by: c, stored: true}
				case st == claimPending && (c.stream != a.stream || c.version != version):
					return &claimedError{eventID: id, by: c}
				}
			}
			expect = c.seq
		}
		body := encodeClaim(claim{stream: a.stream, version: version, token: a.token})
		ack, err := a.s.js.PublishMsg(ctx, &natsgo.Msg{Subject: a.s.claimSubject(id), Data: body}, jetstream.WithExpectLastSequencePerSubject(expect))
		if err == nil {
			a.claimed[i] = ack.Sequence
			return nil
		}
		if !wrongSeq(err) {
			return fmt.Errorf("nats: claim event %q: %w", id, err)
		}
	}
	return fmt.Errorf("%w: event %q: its claim keeps changing under concurrent appends", eventsource.ErrDuplicateEvent, id)
}

// release deletes the append's claims after it failed for sure.
func (a *appender) release(ctx context.Context) {
	if a.claimed == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, seq := range a.claimed {
		if seq == 0 {
			continue
		}
		if err := deleteClaim(ctx, a.h, seq); err != nil {
			a.s.log.Warn("nats: release event ID claim", "stream", a.stream, "claim", seq, "err", err)
		}
	}
}

// deleteClaim deletes the claim message at seq of the index; one already
// gone (replaced, or deleted by another process) is no error. (NATS 2.9
// reports a missing message as a failed deletion, not as "not found".)
func deleteClaim(ctx context.Context, h *streamHandles, seq uint64) error {
	err := h.ids.DeleteMsg(ctx, seq)
	if err == nil || notFound(err) {
		return nil
	}
	if _, gerr := h.ids.GetMsg(ctx, seq); notFound(gerr) {
		return nil
	}
	return err
}

type claimState int

const (
	claimPending claimState = iota // nothing stored at the claimed place yet
	claimStored                    // the event is stored where the claim says
	claimDead                      // another event holds the claimed place
)

// readClaim reads the claim of an event ID: the index's, or for a stored
// ID in the generated layout, its place (see placeOf).
func (s *Store) readClaim(ctx context.Context, h *streamHandles, eventID string) (claim, bool, error) {
	if c, found, err := s.placeOf(ctx, h, eventID); found || err != nil {
		return c, found, err
	}
	m, err := h.ids.GetLastMsgForSubject(ctx, s.claimSubject(eventID))
	if notFound(err) {
		return claim{}, false, nil
	}
	if err != nil {
		return claim{}, false, fmt.Errorf("nats: read the claim of event %q: %w", eventID, err)
	}
	c, err := decodeClaim(m.Data, m.Sequence)
	if err != nil || eventsource.ValidateStreamID(c.stream) != nil {
		return claim{}, false, fmt.Errorf("%w: claim of event %q", eventsource.ErrCorruptData, eventID)
	}
	return c, true, nil
}

// resolve looks at the place a claim names.
func (s *Store) resolve(ctx context.Context, h *streamHandles, c claim, eventID string) (claimState, error) {
	for r, err := range s.stored(ctx, h, c.stream, c.version, c.version) {
		if err != nil {
			return 0, err
		}
		if r.EventID == eventID {
			return claimStored, nil
		}
		return claimDead, nil
	}
	// Nothing stored there: pending while the stream has not reached the
	// place, dead once it has (a scavenge removed the record there).
	hd, err := s.readHead(ctx, h, c.stream)
	if err != nil {
		return 0, err
	}
	if hd.version >= c.version {
		return claimDead, nil
	}
	return claimPending, nil
}

// stored reads the records of stream from from to to as stored: a retired
// record is still there (and its event ID taken) until it is scavenged.
func (s *Store) stored(ctx context.Context, h *streamHandles, stream string, from, to int64) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		s.readStream(ctx, h, stream, from, to, false, yield)
	}
}

// retried decides, as the memory store does, whether recs were stored
// already: done is false when none of their event IDs is stored; otherwise
// the append is an idempotent retry (the original result) or a duplicate.
func (s *Store) retried(ctx context.Context, h *streamHandles, stream string, expected eventsource.ExpectedVersion, recs []eventsource.Record, token string) (eventsource.AppendResult, bool, error) {
	stored := func(i int) (claim, bool, error) {
		if recs[i].EventID == "" { // generated now: stored nowhere
			return claim{}, false, nil
		}
		c, found, err := s.readClaim(ctx, h, recs[i].EventID)
		if err != nil || !found || c.token != "" && c.token == token {
			return c, false, err
		}
		st, err := s.resolve(ctx, h, c, recs[i].EventID)
		return c, st == claimStored, err
	}
	c, ok, err := stored(0)
	if err != nil {
		return eventsource.AppendResult{}, true, err
	}
	if !ok {
		for i := 1; i < len(recs); i++ {
			c, ok, err := stored(i)
			if err != nil {
				return eventsource.AppendResult{}, true, err
			}
			if ok {
				return eventsource.AppendResult{}, true, fmt.Errorf("%w (%q version %d)", storekit.Duplicate(stream, recs[i].EventID, i), c.stream, c.version)
			}
		}
		return eventsource.AppendResult{}, false, nil
	}
	var got []eventsource.Record
	if c.stream == stream {
		for r, err := range s.stored(ctx, h, stream, c.version, c.version+int64(len(recs))-1) {
			if err != nil {
				return eventsource.AppendResult{}, true, err
			}
			got = append(got, r)
		}
	}
	first := eventsource.Record{StreamID: c.stream, Version: c.version, EventID: recs[0].EventID}
	if len(got) > 0 {
		first.Position = got[0].Position
	}
	res, err := storekit.ExactRetry(stream, expected, storekit.EventIDs(recs), first, got)
	return res, true, err
}

package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// Stream lifecycle (eventsource.StreamLifecycle). A lifecycle write lives in
// two places, and JetStream (2.9: no batch publish) cannot write both at
// once, so it is a two-step commit that any process can complete:
//
//  1. an intent in the lifecycle index (<name>_META, one message per stream
//     on <prefix>-meta.<stream>, the newest kept), published with the
//     expected subject sequence of the entry it read: that is the metadata
//     version check, and it orders the stream's lifecycle writes;
//  2. a marker on the stream's own subject, published with the expected
//     sequence of the stream's last message: that is the commit point, in
//     order with the stream's appends (a hard delete's marker makes every
//     later append fail its expectation, read it, and refuse);
//  3. the committed state in the index, replacing the intent.
//
// An intent's marker names it. Whoever reads an intent (a reader, a writer,
// Scavenge) looks on the stream's subject for its marker: found, the write
// is committed, with the state the intent and the marker's version say;
// not found, the state before it holds. Since the intent is in the index
// before the marker can exist, every reader that consults the index after
// the commit point sees the write. A writer that dies between the steps
// leaves an intent that the next writer (or Scavenge, or a reader once it
// is a minute old) completes: it publishes the marker itself, or finds that
// the write can no longer land (an exact version it checked has passed) and
// records the state before it.

const (
	kindMetadata  = "metadata"  // SetStreamMetadata
	kindDelete    = "delete"    // DeleteStream: a soft delete
	kindTombstone = "tombstone" // TombstoneStream: a hard delete
)

// staleIntent is how old an intent is before a reader completes it (its
// writer is most likely dead).
const staleIntent = time.Minute

// lcState is a stream's lifecycle state as the index records it.
type lcState struct {
	md      eventsource.StreamMetadata
	version int64 // metadata version, 0 until first written
	ret     storekit.Retention
}

// at is the retention of the stream at version head: MaxCount moves the
// cut with every append, and appends do not write the index, so the cut
// at head is computed here, as Retention.Next would have moved it.
func (st lcState) at(head int64) storekit.Retention {
	r := st.ret
	if st.md.MaxCount > 0 && !r.Tombstoned() {
		r.Cut = max(r.Cut, head-st.md.MaxCount+1, 1)
	}
	return r
}

// intent is a lifecycle write between its steps.
type intent struct {
	kind  string
	md    eventsource.StreamMetadata // kindMetadata: the metadata written
	prev  lcState                    // the state it replaces
	basis uint64                     // sequence of the stream's last message when the write was checked (0: none)
	head  int64                      // the stream's version then
	exact bool                       // the write checked an exact version: its marker must follow basis directly
	at    time.Time                  // the writer's clock: the time of the state it commits
}

// apply is the state the intent commits when its marker lands with the
// stream at version head (its basis, for an exact intent; a later one
// otherwise, as appends may land while a write with eventsource.Any retries).
func (in *intent) apply(head int64) lcState {
	md := in.prev.md
	switch in.kind {
	case kindMetadata:
		md = in.md
	case kindDelete:
		md = storekit.SoftDelete(md, head)
	}
	return lcState{md: md, version: in.prev.version + 1, ret: in.prev.at(head).Next(md, head, in.kind == kindTombstone, in.at)}
}

// entry is a stream's message in the index: a committed state, or an
// intent.
type entry struct {
	seq    uint64 // its sequence in the index, 0 when the stream has none
	state  lcState
	intent *intent
}

// stateJSON is the stored form of lcState.
type stateJSON struct {
	Version  int64           `json:"version"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
	Cut      int64           `json:"cut,omitempty"`
	MaxAge   int64           `json:"maxAgeNanos,omitempty"`
	Since    int64           `json:"sinceUnixNanos,omitempty"`
}

type intentJSON struct {
	Kind     string          `json:"kind"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
	Prev     stateJSON       `json:"prev"`
	Basis    uint64          `json:"basis"`
	Head     int64           `json:"head"`
	Exact    bool            `json:"exact,omitempty"`
	At       int64           `json:"atUnixNanos"`
}

// entryJSON is an index message: {"state":{…}} or {"intent":{…}}.
type entryJSON struct {
	State  *stateJSON  `json:"state,omitempty"`
	Intent *intentJSON `json:"intent,omitempty"`
}

func stateToJSON(st lcState) stateJSON {
	md, _ := storekit.EncodeStreamMetadata(st.md)
	j := stateJSON{Version: st.version, Metadata: md, Cut: st.ret.Cut, MaxAge: int64(st.ret.MaxAge)}
	if !st.ret.Since.IsZero() {
		j.Since = st.ret.Since.UnixNano()
	}
	return j
}

func stateFromJSON(stream string, j stateJSON) (lcState, error) {
	md, err := storekit.DecodeStreamMetadata(stream, j.Metadata)
	if err != nil {
		return lcState{}, err
	}
	st := lcState{md: md, version: j.Version, ret: storekit.Retention{Cut: j.Cut, MaxAge: time.Duration(j.MaxAge)}}
	if j.Since != 0 {
		st.ret.Since = time.Unix(0, j.Since).UTC()
	}
	return st, nil
}

func encodeEntry(e entry) []byte {
	var j entryJSON
	if in := e.intent; in != nil {
		md, _ := storekit.EncodeStreamMetadata(in.md)
		j.Intent = &intentJSON{Kind: in.kind, Prev: stateToJSON(in.prev), Basis: in.basis, Head: in.head, Exact: in.exact, At: in.at.UnixNano()}
		if in.kind == kindMetadata {
			j.Intent.Metadata = md
		}
	} else {
		st := stateToJSON(e.state)
		j.State = &st
	}
	b, _ := json.Marshal(j)
	return b
}

func decodeEntry(stream string, data []byte, seq uint64) (entry, error) {
	bad := func(err error) (entry, error) {
		return entry{}, fmt.Errorf("%w: lifecycle entry of stream %q (index message %d): %v", eventsource.ErrCorruptData, stream, seq, err)
	}
	var j entryJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return bad(err)
	}
	e := entry{seq: seq}
	switch {
	case j.State != nil && j.Intent == nil:
		st, err := stateFromJSON(stream, *j.State)
		if err != nil {
			return bad(err)
		}
		e.state = st
	case j.Intent != nil && j.State == nil:
		in := j.Intent
		prev, err := stateFromJSON(stream, in.Prev)
		if err != nil {
			return bad(err)
		}
		md, err := storekit.DecodeStreamMetadata(stream, in.Metadata)
		if err != nil {
			return bad(err)
		}
		switch in.Kind {
		case kindMetadata, kindDelete, kindTombstone:
		default:
			return bad(fmt.Errorf("intent of kind %q", in.Kind))
		}
		e.intent = &intent{kind: in.Kind, md: md, prev: prev, basis: in.Basis, head: in.Head, exact: in.Exact, at: time.Unix(0, in.At).UTC()}
	default:
		return bad(fmt.Errorf("neither a state nor an intent"))
	}
	return e, nil
}

// metaSubject is the subject of stream id's entry in the lifecycle index.
func (s *Store) metaSubject(id string) string { return s.cfg.prefix + "-meta." + encodeToken(id) }

// streamOfMeta decodes the stream ID of an index subject.
func (s *Store) streamOfMeta(subject string) (string, error) {
	tok, ok := strings.CutPrefix(subject, s.cfg.prefix+"-meta.")
	if ok {
		if id, err := decodeToken(tok); err == nil && eventsource.ValidateStreamID(id) == nil {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: lifecycle index subject %q does not name a stream", eventsource.ErrCorruptData, subject)
}

// readEntry reads stream id's entry in the index (seq 0: none).
func (s *Store) readEntry(ctx context.Context, id string) (entry, error) {
	meta, err := s.meta(ctx, false)
	if err != nil || meta == nil {
		return entry{}, err
	}
	m, err := meta.GetLastMsgForSubject(ctx, s.metaSubject(id))
	if notFound(err) {
		return entry{}, nil
	}
	if err != nil {
		return entry{}, fmt.Errorf("nats: read the lifecycle entry of stream %q: %w", id, err)
	}
	return decodeEntry(id, m.Data, m.Sequence)
}

// verdict is what became of an intent.
type verdict int

const (
	pending verdict = iota // no marker yet; the intent may still land
	landed                 // its marker is on the stream's subject
	dead                   // it can no longer land
)

// evaluate looks on the stream's subject, after the intent's basis, for
// the first marker of e's intent, and returns the state in force: the one
// it commits, if it landed, else the one before it. A committed entry is
// its own state.
func (s *Store) evaluate(ctx context.Context, h *streamHandles, id string, e entry) (lcState, verdict, error) {
	st, v, _, err := s.evaluateN(ctx, h, id, e)
	return st, v, err
}

// evaluateN is evaluate, also saying how many messages it looked at.
func (s *Store) evaluateN(ctx context.Context, h *streamHandles, id string, e entry) (lcState, verdict, int, error) {
	in := e.intent
	if in == nil {
		return e.state, landed, 0, nil
	}
	subject := s.streamSubject(id)
	for seq, n := in.basis+1, 1; ; n++ {
		m, ok, err := s.nextMsg(ctx, h.events, subject, seq, 0)
		if err != nil {
			return lcState{}, 0, n, err
		}
		if !ok {
			return in.prev, pending, n, nil
		}
		if mi, err := parseMsg(m.data); err == nil && mi.marker && mi.intent == e.seq {
			return in.apply(mi.version), landed, n, nil
		}
		if in.exact { // the message after its basis is another's
			return in.prev, dead, n, nil
		}
		seq = m.seq + 1
	}
}

// longLook is how many messages a reader passes over looking for an
// intent's marker before it lands the intent itself (its writer is slow or
// dead, and appends keep coming): a second marker from the writer is
// harmless, and the reads of that stream stay short.
const longLook = 32

// current returns stream id's lifecycle state in force now, for a read.
// An intent that did not land is read again (Scavenge may have completed
// it and removed its marker since). One that can no longer land is
// recorded so, one whose marker is a long way off is landed, and one left
// by a writer that looks dead (staleIntent old) is completed, so that no
// reader pays for an unfinished write for long.
func (s *Store) current(ctx context.Context, h *streamHandles, id string) (lcState, error) {
	e, err := s.readEntry(ctx, id)
	if err != nil {
		return lcState{}, err
	}
	for {
		st, v, n, err := s.evaluateN(ctx, h, id, e)
		if err != nil || e.intent == nil {
			return st, err
		}
		if v != landed {
			again, err := s.readEntry(ctx, id)
			if err != nil {
				return lcState{}, err
			}
			if again.seq != e.seq {
				e = again
				continue
			}
		}
		if v == dead || n > longLook || time.Since(e.intent.at) > staleIntent {
			st, _, err = s.settle(ctx, h, id, e)
		}
		return st, err
	}
}

// settle brings stream id's entry e to a committed state and returns it,
// with the index sequence a next write expects: an intent that landed is
// recorded as committed, a dead one as the state before it, and a pending
// one is landed first (its writer may have died; landing it is what that
// writer would have done, and its checks still hold where it lands).
func (s *Store) settle(ctx context.Context, h *streamHandles, id string, e entry) (lcState, uint64, error) {
	for round := 0; ; round++ {
		in := e.intent
		if in == nil {
			return e.state, e.seq, nil
		}
		st, v, err := s.evaluate(ctx, h, id, e)
		if err != nil {
			return lcState{}, 0, err
		}
		if v == pending {
			hd := head{version: in.head, seq: in.basis}
			if !in.exact {
				if hd, err = s.readHead(ctx, h, id); err != nil {
					return lcState{}, 0, err
				}
			}
			if in.kind != kindMetadata {
				if err := s.purgeSnapshots(ctx, id); err != nil {
					return lcState{}, 0, err
				}
			}
			ok := false
			if st, ok, err = s.land(ctx, h, id, e, hd); err != nil {
				return lcState{}, 0, err
			}
			if v = dead; ok {
				v = landed
			}
		}
		if v == landed && in.kind != kindMetadata {
			if err := s.purgeSnapshots(ctx, id); err != nil {
				return lcState{}, 0, err
			}
		}
		seq, err := s.putEntry(ctx, id, entry{state: st}, e.seq)
		if err == nil {
			return st, seq, nil
		}
		if !wrongSeq(err) {
			return lcState{}, 0, err
		}
		// Another process settled it first (or wrote after it).
		if e, err = s.readEntry(ctx, id); err != nil {
			return lcState{}, 0, err
		}
		if err := backOff(ctx, round); err != nil {
			return lcState{}, 0, err
		}
	}
}

// putEntry publishes stream id's index entry over the one at seq.
func (s *Store) putEntry(ctx context.Context, id string, e entry, seq uint64) (uint64, error) {
	ack, err := s.js.PublishMsg(ctx, &natsgo.Msg{Subject: s.metaSubject(id), Data: encodeEntry(e)}, jetstream.WithExpectLastSequencePerSubject(seq))
	if err != nil {
		if wrongSeq(err) {
			return 0, err
		}
		return 0, fmt.Errorf("nats: write the lifecycle entry of stream %q: %w", id, err)
	}
	return ack.Sequence, nil
}

// land publishes the marker of e's intent on the stream's subject with the
// stream at hd. An exact intent lands at its basis or never (ok false: it
// is dead, and st is the state before it). Another retries at the new head
// when appends come first, reading the head and publishing at once, as an
// append with eventsource.Any does. A process settling the intent may have
// landed it meanwhile: a marker that landed past the basis is then a
// second one, harmless (it says the stream's version, as any marker), and
// the first after the basis is the one that counts, for everyone.
func (s *Store) land(ctx context.Context, h *streamHandles, id string, e entry, hd head) (st lcState, ok bool, err error) {
	in := e.intent
	tomb := in.kind == kindTombstone
	for attempt := 0; ; attempt++ {
		msg := &natsgo.Msg{Subject: s.streamSubject(id), Data: encodeMarker(hd.version, e.seq, tomb)}
		ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(hd.seq))
		if err == nil {
			s.heads.Put(id, head{version: hd.version, seq: ack.Sequence, ruled: true, tomb: tomb})
			s.changed.Fire()
			if hd.seq == in.basis { // nothing between the basis and this marker
				return in.apply(hd.version), true, nil
			}
			st, v, err := s.evaluate(ctx, h, id, e)
			if err == nil && v != landed {
				err = fmt.Errorf("nats: stream %q: the %s marker landed at %d but is not found after %d", id, in.kind, ack.Sequence, in.basis)
			}
			return st, err == nil, err
		}
		if !wrongSeq(err) {
			return lcState{}, false, fmt.Errorf("nats: stream %q: publish the %s marker: %w", id, in.kind, err)
		}
		s.heads.Drop(id)
		if in.exact {
			st, v, err := s.evaluate(ctx, h, id, e)
			return st, v == landed, err
		}
		if err := backOff(ctx, attempt); err != nil {
			return lcState{}, false, err
		}
		if hd, err = s.readHead(ctx, h, id); err != nil {
			return lcState{}, false, err
		}
		if hd.tomb { // only this intent can have put a hard delete's marker there
			st, v, err := s.evaluate(ctx, h, id, e)
			return st, v == landed, err
		}
	}
}

// change is a lifecycle write, as checked against the stream's state.
type change struct {
	kind  string
	md    eventsource.StreamMetadata // kindMetadata
	exact bool                       // it checked an exact version of the stream
}

// write runs a lifecycle write on stream id: check says, from the stream's
// state and head, what to write (or why not); write then publishes the
// intent, the marker and the committed state (see the top of this file),
// and starts again when an append or another lifecycle write came first.
func (s *Store) write(ctx context.Context, id string, check func(cur lcState, hd head) (change, error)) (lcState, error) {
	if err := eventsource.ValidateStreamID(id); err != nil {
		return lcState{}, err
	}
	h, err := s.handles(ctx)
	if err != nil {
		return lcState{}, err
	}
	if _, err := s.meta(ctx, true); err != nil {
		return lcState{}, err
	}
	for round := 0; ; round++ {
		e, err := s.readEntry(ctx, id)
		if err != nil {
			return lcState{}, err
		}
		cur, seq, err := s.settle(ctx, h, id, e)
		if err != nil {
			return lcState{}, err
		}
		hd, err := s.readHead(ctx, h, id)
		if err != nil {
			return lcState{}, err
		}
		if hd.tomb || cur.ret.Tombstoned() {
			return lcState{}, storekit.Tombstoned(id)
		}
		ch, err := check(cur, hd)
		if err != nil {
			return lcState{}, err
		}
		in := &intent{kind: ch.kind, md: ch.md, prev: cur, basis: hd.seq, head: hd.version, exact: ch.exact, at: time.Now().UTC()}
		iseq, err := s.putEntry(ctx, id, entry{intent: in}, seq)
		if wrongSeq(err) { // another lifecycle write came first: check again
			if err := backOff(ctx, round); err != nil {
				return lcState{}, err
			}
			continue
		}
		if err != nil {
			return lcState{}, err
		}
		e = entry{seq: iseq, intent: in}
		if ch.kind != kindMetadata {
			if err := s.purgeSnapshots(ctx, id); err != nil {
				return lcState{}, err
			}
		}
		st, ok, err := s.land(ctx, h, id, e, hd)
		if err != nil {
			return lcState{}, err
		}
		if !ok { // an append came first: the next round records that and checks again
			if err := backOff(ctx, round); err != nil {
				return lcState{}, err
			}
			continue
		}
		if ch.kind != kindMetadata { // a snapshot saved meanwhile
			if err := s.purgeSnapshots(ctx, id); err != nil {
				return lcState{}, err
			}
		}
		if _, err := s.putEntry(ctx, id, entry{state: st}, iseq); err != nil && !wrongSeq(err) {
			// Committed all the same: the next process to read the intent
			// finds the marker.
			s.log.Warn("nats: record a committed lifecycle write", "stream", id, "err", err)
		}
		return st, nil
	}
}

// StreamMetadata implements eventsource.StreamLifecycle: one request for
// the stream's index entry (more while a write is between its steps).
func (s *Store) StreamMetadata(ctx context.Context, id string) (eventsource.StreamMetadata, int64, error) {
	if err := eventsource.ValidateStreamID(id); err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	h, err := s.handles(ctx)
	if err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	st, err := s.current(ctx, h, id)
	if err != nil {
		return eventsource.StreamMetadata{}, 0, err
	}
	if st.ret.Tombstoned() {
		return eventsource.StreamMetadata{}, 0, storekit.Tombstoned(id)
	}
	return st.md, st.version, nil
}

// SetStreamMetadata implements eventsource.StreamLifecycle. The metadata
// version check is the index entry's expected sequence; the write's marker
// lands at whatever version the stream has by then, so appends never make
// it fail (with MaxCount, the cut is computed at that version).
func (s *Store) SetStreamMetadata(ctx context.Context, id string, expected eventsource.ExpectedVersion, md eventsource.StreamMetadata) (int64, error) {
	if err := storekit.ValidateStreamMetadata(id, md); err != nil {
		return 0, err
	}
	if err := storekit.ValidateExpected(expected); err != nil {
		return 0, err
	}
	md.Values = maps.Clone(md.Values)
	st, err := s.write(ctx, id, func(cur lcState, _ head) (change, error) {
		if err := storekit.CheckMetadataVersion(id, expected, cur.version); err != nil {
			return change{}, err
		}
		return change{kind: kindMetadata, md: md}, nil
	})
	return st.version, err
}

// DeleteStream implements eventsource.StreamDeleter: a soft delete, a
// lifecycle write of TruncateBefore = the stream's version + 1 (see
// eventsource.StreamLifecycle). Nothing is removed but the stream's
// snapshots; Scavenge reclaims the commits. With an exact expected version
// the marker must follow the commit checked; with Any or StreamExists it
// lands after whatever appends come first, deleting them too.
func (s *Store) DeleteStream(ctx context.Context, id string, expected eventsource.ExpectedVersion) error {
	if err := storekit.ValidateExpected(expected); err != nil {
		return err
	}
	_, err := s.write(ctx, id, func(cur lcState, hd head) (change, error) {
		if err := cur.at(hd.version).CheckDelete(id, expected, hd.version); err != nil {
			return change{}, err
		}
		return change{kind: kindDelete, exact: expected >= 0}, nil
	})
	return err
}

// TombstoneStream implements eventsource.StreamLifecycle: a hard delete,
// whose marker is the stream's last message for good.
func (s *Store) TombstoneStream(ctx context.Context, id string, expected eventsource.ExpectedVersion) error {
	if err := storekit.ValidateExpected(expected); err != nil {
		return err
	}
	_, err := s.write(ctx, id, func(cur lcState, hd head) (change, error) {
		if err := cur.at(hd.version).CheckTombstone(id, expected, hd.version); err != nil {
			return change{}, err
		}
		return change{kind: kindTombstone, exact: expected >= 0}, nil
	})
	return err
}

// ruleBook is the lifecycle index as ReadAll needs it: the entries of the
// streams whose rules may retire something, read up to the index's last
// sequence. Checking that nothing changed is one request (the index's
// stream info); what changed is read from where the book stopped.
type ruleBook struct {
	mu      sync.Mutex
	seq     uint64           // index messages applied, up to this sequence
	synced  time.Time        // when the last check of the index began
	entries map[string]entry // by stream ID
}

// rulesFor returns the retention in force for the streams of recs, a page
// fetched at fetched, by stream ID (streams that retire nothing are left
// out; nil when none does). The index is checked after the page was
// fetched, so a rule whose write committed before the fetch is in force;
// concurrent pages of one Store share a check that began after both were
// fetched.
func (s *Store) rulesFor(ctx context.Context, h *streamHandles, fetched time.Time, recs []eventsource.Record) (map[string]storekit.Retention, error) {
	b := &s.book
	b.mu.Lock()
	if !b.synced.After(fetched) {
		start := time.Now()
		if err := s.syncBook(ctx); err != nil {
			b.mu.Unlock()
			return nil, err
		}
		b.synced = start
	}
	var found map[string]entry
	if len(b.entries) > 0 {
		for i := range recs {
			id := recs[i].StreamID
			if _, seen := found[id]; seen {
				continue
			}
			if e, ok := b.entries[id]; ok {
				if found == nil {
					found = map[string]entry{}
				}
				found[id] = e
			}
		}
	}
	b.mu.Unlock()
	if len(found) == 0 {
		return nil, nil
	}
	rules := make(map[string]storekit.Retention, len(found))
	for id, e := range found {
		st := e.state
		if e.intent != nil { // between its steps: look at the stream
			var err error
			if st, err = s.current(ctx, h, id); err != nil {
				return nil, err
			}
		}
		ret := st.ret
		if st.md.MaxCount > 0 && !ret.Tombstoned() {
			hd, err := s.readHead(ctx, h, id)
			if err != nil {
				return nil, err
			}
			ret = st.at(hd.version)
		}
		if !ret.IsZero() {
			rules[id] = ret
		}
	}
	return rules, nil
}

// syncBook brings the book up to the index's last message; b.mu is held.
func (s *Store) syncBook(ctx context.Context) error {
	b := &s.book
	meta, err := s.meta(ctx, false)
	if err != nil {
		return err
	}
	if meta == nil {
		b.seq, b.entries = 0, nil
		return nil
	}
	info, err := meta.Info(ctx)
	if err != nil {
		return fmt.Errorf("nats: read the lifecycle index: %w", err)
	}
	last := info.State.LastSeq
	if last == b.seq {
		return nil
	}
	if last < b.seq || b.entries == nil { // new, or the index was made again
		b.seq, b.entries = 0, map[string]entry{}
	}
	first := b.seq + 1
	err = s.scan(ctx, meta, s.metaSubjects(), first, last, int(min(last-first+1, 1<<30)), func(page []rawMsg) (bool, error) {
		for _, m := range page {
			id, err := s.streamOfMeta(m.subject)
			if err != nil {
				return false, err
			}
			e, err := decodeEntry(id, m.data, m.seq)
			if err != nil {
				return false, err
			}
			if e.intent == nil && e.state.ret.IsZero() && e.state.md.MaxCount == 0 {
				delete(b.entries, id)
			} else {
				b.entries[id] = e
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	b.seq = last
	return nil
}

// ruled returns, in stream ID order, the streams after after whose
// lifecycle entry may retire something.
func (s *Store) ruled(ctx context.Context, after string) ([]string, error) {
	b := &s.book
	b.mu.Lock()
	defer b.mu.Unlock()
	start := time.Now()
	if err := s.syncBook(ctx); err != nil {
		return nil, err
	}
	b.synced = start
	var ids []string
	for id := range b.entries {
		if id > after {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

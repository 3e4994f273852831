package nats

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// rawMsg is a stored commit message, from a direct get or a consumer.
type rawMsg struct {
	subject string
	seq     uint64
	data    []byte
	time    time.Time
}

// scan calls fn with the messages of st on subject filter (wildcards
// allowed) from sequence seq on, in sequence order and a page at a time,
// until fn says stop or the message at end has been passed. End 0 stands
// for the last message on filter when the read starts; later messages are
// left for the next read. want bounds the number of messages the read can
// meet (0: unknown). A read of a few messages (at most 8, known from want or
// from the range of a read of all subjects: a short read, or polling the
// tail) takes one direct request each and is one page; a longer one uses an
// ephemeral consumer that fetches pages of WithBatchSize messages.
//
// The consumer's count of pending messages decides nothing: NATS 2.9 counts
// a wildcard filter wrongly (too many or too few, depending on map order),
// which ended reads early or left them waiting for messages that did not
// exist. The read ends at end, or when a direct get finds nothing more.
func (s *Store) scan(ctx context.Context, st jetstream.Stream, filter string, seq, end uint64, want int, fn func([]rawMsg) (bool, error)) error {
	if end == 0 {
		var err error
		if end, err = s.lastSeq(ctx, st, filter); err != nil {
			return err
		}
	}
	if seq > end {
		return nil
	}
	if filter == s.eventsSubject() && (want == 0 || end-seq < uint64(want)) {
		want = int(min(end-seq+1, 1<<30))
	}
	if want > 0 && want <= s.cfg.hops {
		return s.scanDirect(ctx, st, filter, seq, end, fn)
	}
	return s.scanConsumer(ctx, st, filter, seq, end, fn)
}

// scanDirect is scan by one direct request per message, in pages of at
// most s.cfg.hops messages.
func (s *Store) scanDirect(ctx context.Context, st jetstream.Stream, filter string, seq, end uint64, fn func([]rawMsg) (bool, error)) error {
	var page []rawMsg
	for {
		m, ok, err := s.nextMsg(ctx, st, filter, seq, end)
		if err != nil {
			return err
		}
		if ok {
			page = append(page, m)
		}
		if len(page) > 0 && (!ok || m.seq >= end || len(page) >= s.cfg.hops) {
			more, err := fn(page)
			if err != nil || !more {
				return err
			}
			page = nil
		}
		if !ok || m.seq >= end {
			return nil
		}
		seq = m.seq + 1
	}
}

// scanConsumer is scan by an ephemeral consumer, deleted when the read ends.
// Should the consumer come back empty while messages remain, the read goes on
// by direct gets, a page per message.
func (s *Store) scanConsumer(ctx context.Context, st jetstream.Stream, filter string, seq, end uint64, fn func([]rawMsg) (bool, error)) error {
	cons, err := s.readConsumer(ctx, st, filter, seq)
	if err != nil {
		return err
	}
	defer s.deleteReadConsumer(ctx, st, cons)
	direct := false // the consumer came back empty while messages remained
	for seq <= end {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !direct {
			next, more, err := s.fetchBatch(ctx, cons, filter, seq, end, fn)
			if err != nil || !more {
				return err
			}
			if next > seq {
				seq = next
				continue
			}
		}
		// An empty no-wait fetch means the server thinks nothing is left,
		// which a direct get confirms (messages up to end may have been
		// purged or expired since) or refutes.
		m, ok, err := s.nextMsg(ctx, st, filter, seq, end)
		if !ok || err != nil {
			return err
		}
		if !direct {
			direct = true
			s.log.Debug("nats: read consumer came back empty with messages left; reading on by direct gets", "filter", filter, "seq", m.seq, "end", end)
		}
		more, err := fn([]rawMsg{m})
		if err != nil || !more {
			return err
		}
		seq = m.seq + 1
	}
	return nil
}

// readConsumer creates the ephemeral consumer of a read of filter from
// sequence seq on.
func (s *Store) readConsumer(ctx context.Context, st jetstream.Stream, filter string, seq uint64) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       seq,
		FilterSubject:     filter,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute, // the server removes it if this process dies mid-read
		MemoryStorage:     true,
		Replicas:          1,
	}
	if filter == s.eventsSubject() || filter == s.metaSubjects() {
		// The stream's only subject: unfiltered, 2.9 counts pending exactly,
		// so a no-wait fetch is not refused while messages remain.
		cfg.FilterSubject = ""
	}
	cons, err := st.CreateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("nats: read %s from %d: %w", filter, seq, err)
	}
	return cons, nil
}

// deleteReadConsumer deletes a read's consumer, even when the read's
// context has ended.
func (s *Store) deleteReadConsumer(ctx context.Context, st jetstream.Stream, cons jetstream.Consumer) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := st.DeleteConsumer(dctx, cons.CachedInfo().Name); err != nil {
		s.log.Debug("nats: delete read consumer", "err", err)
	}
}

// fetchBatch passes fn the messages of one no-wait fetch from cons at or
// after seq, as one page, and returns the sequence to read from next: seq
// itself when the fetch brought nothing new. more is false once fn says
// stop or the fetch has passed end.
func (s *Store) fetchBatch(ctx context.Context, cons jetstream.Consumer, filter string, seq, end uint64, fn func([]rawMsg) (bool, error)) (next uint64, more bool, err error) {
	batch, err := cons.FetchNoWait(int(min(end-seq+1, uint64(s.cfg.batch))))
	if err != nil {
		return seq, false, fmt.Errorf("nats: read %s from %d: %w", filter, seq, err)
	}
	var page []rawMsg
	past := false
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			return seq, false, fmt.Errorf("nats: read %s from %d: %w", filter, seq, err)
		}
		if md.Sequence.Stream < seq {
			continue // already read by a direct get
		}
		if md.Sequence.Stream > end {
			past = true
			break
		}
		page = append(page, rawMsg{subject: m.Subject(), seq: md.Sequence.Stream, data: m.Data(), time: md.Timestamp})
		seq = md.Sequence.Stream + 1
	}
	if !past {
		if err := batch.Error(); err != nil {
			return seq, false, fmt.Errorf("nats: read %s from %d: %w", filter, seq, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return seq, false, err
	}
	if len(page) > 0 {
		if more, err := fn(page); err != nil || !more {
			return seq, false, err
		}
	}
	return seq, !past, nil
}

// nextMsg reads the first message of st on filter at or after seq by a
// direct request; ok is false when there is none (up to end, when end > 0).
func (s *Store) nextMsg(ctx context.Context, st jetstream.Stream, filter string, seq, end uint64) (rawMsg, bool, error) {
	if err := ctx.Err(); err != nil {
		return rawMsg{}, false, err
	}
	m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
	if notFound(err) {
		return rawMsg{}, false, nil
	}
	if err != nil {
		return rawMsg{}, false, fmt.Errorf("nats: read message %d of %s: %w", seq, filter, err)
	}
	if end > 0 && m.Sequence > end {
		return rawMsg{}, false, nil
	}
	return rawMsg{subject: m.Subject, seq: m.Sequence, data: m.Data, time: m.Time}, true, nil
}

// lastSeq returns the sequence of the last message of st on filter, 0 when
// there is none: the stream's last sequence for all of its subjects (that
// message may have been purged since; scan copes), else the subject's last
// message.
func (s *Store) lastSeq(ctx context.Context, st jetstream.Stream, filter string) (uint64, error) {
	if filter == s.eventsSubject() || filter == s.metaSubjects() {
		info, err := st.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("nats: read %s: %w", filter, err)
		}
		return info.State.LastSeq, nil
	}
	m, err := st.GetLastMsgForSubject(ctx, filter)
	if notFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("nats: read %s: %w", filter, err)
	}
	return m.Sequence, nil
}

func (s *Store) decode(m rawMsg, stream string) (commit, error) {
	c, err := decodeCommit(m.data, stream, m.seq, m.time.UTC())
	if err != nil {
		return commit{}, &eventsource.DecodeError{Stream: stream, Type: "commit", Err: fmt.Errorf("message %d: %w", m.seq, err)}
	}
	return c, nil
}

// ReadStream implements eventsource.Store. It reads the stream's last
// message first; when that is a commit holding version from, it is the only
// request (and one more, the stream's lifecycle entry, for a stream that
// has one). Otherwise it reads the stream's commits from the one holding
// the first version wanted on. Records the stream's retention retires are
// left out; a hard-deleted stream yields one *eventsource.StreamDeletedError.
func (s *Store) ReadStream(ctx context.Context, id string, from, to int64) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		if err := eventsource.ValidateStreamID(id); err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		h, err := s.handles(ctx)
		if err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		s.readStream(ctx, h, id, from, to, true, yield)
	}
}

// readStream is ReadStream; with visible false it reads what is stored,
// retired records and hard-deleted streams included (the event ID checks
// need that: a retired record's ID stays taken until it is scavenged).
func (s *Store) readStream(ctx context.Context, h *streamHandles, id string, from, to int64, visible bool, yield func(eventsource.Record, error) bool) {
	if from < 1 {
		from = 1
	}
	subject := s.streamSubject(id)
	lm, li, err := s.lastMsgOf(ctx, h, id, subject)
	if err != nil {
		yield(eventsource.Record{}, err)
		return
	}
	if lm.seq == 0 || li.legacy { // no stream, or one an earlier version deleted
		return
	}
	if li.tomb && visible {
		yield(eventsource.Record{}, storekit.Tombstoned(id))
		return
	}
	lastVersion := li.version
	keep := func(*eventsource.Record) bool { return true }
	if visible && li.ruled {
		st, err := s.current(ctx, h, id)
		if err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		ret := st.at(lastVersion)
		if ret.Tombstoned() {
			yield(eventsource.Record{}, storekit.Tombstoned(id))
			return
		}
		if !ret.IsZero() {
			from = max(from, ret.Cut)
			now := time.Now()
			keep = func(r *eventsource.Record) bool { return ret.Visible(r.Version, r.RecordedAt, now) }
		}
	}
	if from > lastVersion || to > 0 && to < from {
		return
	}
	if li.count > 0 && li.first <= from {
		c, err := s.decode(lm, id)
		if err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		yieldVersions(c, from, to, keep, yield)
		return
	}
	start, startVersion, err := s.scanStart(ctx, h, subject, from, lm.seq)
	if err != nil {
		yield(eventsource.Record{}, err)
		return
	}
	stopped := false
	err = s.scan(ctx, h.events, subject, start, lm.seq, int(min(lastVersion-startVersion+1, 1<<30)), func(page []rawMsg) (bool, error) {
		for _, m := range page {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			if mi, err := parseMsg(m.data); err == nil && (mi.count == 0 || mi.version < from) {
				continue // a marker, or before the range: skip without unpacking
			}
			c, err := s.decode(m, id)
			if err != nil {
				return false, err
			}
			if !yieldVersions(c, from, to, keep, yield) {
				stopped = true
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && !stopped {
		yield(eventsource.Record{}, err)
	}
}

// lastMsgOf reads the last message on subject, stream id's newest commit or
// lifecycle marker, and what it says (seq 0 when the subject has none).
func (s *Store) lastMsgOf(ctx context.Context, h *streamHandles, id, subject string) (rawMsg, msgInfo, error) {
	msg, err := h.events.GetLastMsgForSubject(ctx, subject)
	if notFound(err) {
		return rawMsg{}, msgInfo{}, nil
	}
	if err != nil {
		return rawMsg{}, msgInfo{}, fmt.Errorf("nats: read stream %q: %w", id, err)
	}
	m := rawMsg{subject: msg.Subject, seq: msg.Sequence, data: msg.Data, time: msg.Time}
	mi, err := parseMsg(m.data)
	if err != nil {
		return rawMsg{}, msgInfo{}, &eventsource.DecodeError{Stream: id, Type: "commit", Err: err}
	}
	return m, mi, nil
}

// yieldVersions yields the records of c within [from, to] (to <= 0: no
// end) that keep accepts. It returns false once past to or when yield says
// stop.
func yieldVersions(c commit, from, to int64, keep func(*eventsource.Record) bool, yield func(eventsource.Record, error) bool) (more bool) {
	for i := range c.recs {
		r := &c.recs[i]
		if r.Version < from || !keep(r) {
			continue
		}
		if to > 0 && r.Version > to {
			return false
		}
		if !yield(*r, nil) {
			return false
		}
	}
	return to <= 0 || c.last() < to
}

// scanStart returns where a read of the stream on subject from version
// from begins, up to end (its last message): with many versions to skip,
// the sequence and first version of the commit that holds from (found by
// seek) rather than the stream's first; otherwise, or when seek finds none,
// sequence 1 and version 1.
func (s *Store) scanStart(ctx context.Context, h *streamHandles, subject string, from int64, end uint64) (seq uint64, version int64, err error) {
	if from-1 <= int64(s.cfg.batch) {
		return 1, 1, nil
	}
	seq, version, err = s.seek(ctx, h, subject, from, end)
	if err != nil {
		return 0, 0, err
	}
	if seq == 0 {
		return 1, 1, nil
	}
	return seq, version, nil
}

// seek finds, by bisection over the sequences up to end (the stream's last
// message), the commit of the stream on subject that holds version v: its
// sequence and first version, or 0 when no commit holds v (the stream's
// early commits were scavenged or expired, say). Each step is one direct
// get, so a commit among n messages is found in about log2(n) requests. A
// marker says the stream's version where it stands, so it steers the
// search like a commit.
func (s *Store) seek(ctx context.Context, h *streamHandles, subject string, v int64, end uint64) (uint64, int64, error) {
	lo, hi := uint64(1), end // the commit, if any, lies in [lo, hi]
	for lo <= hi {
		mid := lo + (hi-lo)/2
		m, ok, err := s.nextMsg(ctx, h.events, subject, mid, hi)
		if err != nil {
			return 0, 0, err
		}
		if !ok { // nothing of the stream in [mid, hi]
			hi = mid - 1
			continue
		}
		mi, err := parseMsg(m.data)
		if err != nil {
			return 0, 0, &eventsource.DecodeError{Type: "commit", Err: fmt.Errorf("message %d: %w", m.seq, err)}
		}
		switch {
		case mi.legacy || mi.version < v: // a legacy tombstone: what precedes it is gone
			lo = m.seq + 1
		case mi.count == 0 || mi.first > v: // and nothing of the stream lies in [mid, m.seq)
			hi = mid - 1
		default:
			return m.seq, mi.first, nil
		}
	}
	return 0, 0, nil
}

// ReadAll implements eventsource.Store. A record's position is its commit
// message's stream sequence << 16 | its index in the commit, so positions
// follow the order in which JetStream stored the commits: a reader never
// skips one. With one stream in the filter (and no prefixes) the read asks
// the server for that stream's subject only; other filters are applied here.
// Each page (a fetch of WithBatchSize commits, or the few a short read gets
// one by one) is checked against the lifecycle index after it is fetched:
// records a rule retires are left out (see rulesFor).
func (s *Store) ReadAll(ctx context.Context, from uint64, f eventsource.Filter) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		h, err := s.handles(ctx)
		if err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		seq := from >> 16
		if seq == 0 {
			seq, from = 1, 0
		}
		filter := s.eventsSubject()
		if len(f.Streams) == 1 && len(f.StreamPrefixes) == 0 {
			if eventsource.ValidateStreamID(f.Streams[0]) != nil {
				return // no stream has that ID
			}
			filter = s.streamSubject(f.Streams[0])
		}
		stopped := false
		var recs []eventsource.Record
		err = s.scan(ctx, h.events, filter, seq, 0, 0, func(page []rawMsg) (bool, error) {
			fetched := time.Now()
			recs = recs[:0]
			for _, m := range page {
				if mi, err := parseMsg(m.data); err == nil && mi.count == 0 {
					continue // a lifecycle marker
				}
				stream, err := s.streamOf(m.subject)
				if err != nil {
					return false, err
				}
				c, err := s.decode(m, stream)
				if err != nil {
					return false, err
				}
				for i := range c.recs {
					if r := &c.recs[i]; r.Position >= from && f.Match(r) {
						recs = append(recs, *r)
					}
				}
			}
			if len(recs) == 0 {
				return true, nil
			}
			rules, err := s.rulesFor(ctx, h, fetched, recs)
			if err != nil {
				return false, err
			}
			now := time.Now()
			for i := range recs {
				if err := ctx.Err(); err != nil {
					return false, err
				}
				r := &recs[i]
				if ret, ok := rules[r.StreamID]; ok && !ret.Visible(r.Version, r.RecordedAt, now) {
					continue
				}
				if !yield(*r, nil) {
					stopped = true
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil && !stopped {
			yield(eventsource.Record{}, err)
		}
	}
}

// Head implements eventsource.HeadReader: the position of the last record of
// the newest commit. When the newest message is a lifecycle marker (or was
// scavenged or expired), it is the largest position the message could have
// held (its sequence << 16 | 0xFFFF), still below every later position.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	h, err := s.handles(ctx)
	if err != nil {
		return 0, err
	}
	info, err := h.events.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("nats: head: %w", err)
	}
	last := info.State.LastSeq
	if last == 0 {
		return 0, nil
	}
	m, err := h.events.GetMsg(ctx, last)
	if notFound(err) {
		return last<<16 | 0xFFFF, nil
	}
	if err != nil {
		return 0, fmt.Errorf("nats: head: %w", err)
	}
	mi, err := parseMsg(m.Data)
	if err != nil {
		return 0, &eventsource.DecodeError{Type: "commit", Err: fmt.Errorf("message %d: %w", last, err)}
	}
	if mi.count == 0 { // a lifecycle marker
		return last<<16 | 0xFFFF, nil
	}
	return last<<16 | uint64(mi.count-1), nil
}

// ListStreams implements eventsource.StreamLister. JetStream lists the
// subjects of the events stream (all of them: a prefix of a stream ID is not
// a prefix of subject tokens the server can filter on), the store decodes,
// filters and sorts them, then reads each listed stream's version (one
// request per stream, and one more for a stream with lifecycle state, which
// is left out when it is deleted or has only metadata).
func (s *Store) ListStreams(ctx context.Context, prefix string) iter.Seq2[eventsource.StreamInfo, error] {
	return func(yield func(eventsource.StreamInfo, error) bool) {
		h, err := s.handles(ctx)
		if err != nil {
			yield(eventsource.StreamInfo{}, err)
			return
		}
		info, err := h.events.Info(ctx, jetstream.WithSubjectFilter(s.eventsSubject()))
		if err != nil {
			yield(eventsource.StreamInfo{}, fmt.Errorf("nats: list streams: %w", err))
			return
		}
		var ids []string
		for subj, n := range info.State.Subjects {
			if n == 0 {
				continue
			}
			id, err := s.streamOf(subj)
			if err != nil {
				yield(eventsource.StreamInfo{}, err)
				return
			}
			if strings.HasPrefix(id, prefix) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			hd, err := s.readHead(ctx, h, id)
			if err != nil {
				yield(eventsource.StreamInfo{}, err)
				return
			}
			if hd.version == 0 || hd.tomb {
				continue // no events (metadata only), or hard-deleted
			}
			if hd.ruled {
				st, err := s.current(ctx, h, id)
				if err != nil {
					yield(eventsource.StreamInfo{}, err)
					return
				}
				if st.at(hd.version).Absent(hd.version) {
					continue // soft-deleted
				}
			}
			if !yield(eventsource.StreamInfo{StreamID: id, Version: hd.version}, nil) {
				return
			}
		}
	}
}

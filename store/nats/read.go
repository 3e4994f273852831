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
)

// rawMsg is a stored commit message, from a direct get or a consumer.
type rawMsg struct {
	subject string
	seq     uint64
	data    []byte
	time    time.Time
}

// scan calls fn with the messages on subject filter (wildcards allowed) from
// sequence seq on, in sequence order, until fn says stop or the message at
// end has been passed. End 0 stands for the last message on filter when the
// read starts; later messages are left for the next read. want bounds the
// number of messages the read can meet (0: unknown). A read of a few
// messages (at most 8, known from want or from the range of a read of all
// subjects: a short read, or polling the tail) takes one direct request
// each; a longer one uses an ephemeral consumer that fetches batches of
// WithBatchSize messages.
//
// The consumer's count of pending messages decides nothing: NATS 2.9 counts
// a wildcard filter wrongly (too many or too few, depending on map order),
// which ended reads early or left them waiting for messages that did not
// exist. The read ends at end, or when a direct get finds nothing more.
func (s *Store) scan(ctx context.Context, h *streamHandles, filter string, seq, end uint64, want int, fn func(rawMsg) (bool, error)) error {
	if end == 0 {
		var err error
		if end, err = s.lastSeq(ctx, h, filter); err != nil {
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
		return s.scanDirect(ctx, h, filter, seq, end, fn)
	}
	return s.scanConsumer(ctx, h, filter, seq, end, fn)
}

// scanDirect is scan by one direct request per message.
func (s *Store) scanDirect(ctx context.Context, h *streamHandles, filter string, seq, end uint64, fn func(rawMsg) (bool, error)) error {
	for {
		m, ok, err := s.nextMsg(ctx, h, filter, seq, end)
		if !ok || err != nil {
			return err
		}
		more, err := fn(m)
		if err != nil || !more || m.seq >= end {
			return err
		}
		seq = m.seq + 1
	}
}

// scanConsumer is scan by an ephemeral consumer, deleted when the read ends.
// Should the consumer come back empty while messages remain, the read goes on
// by direct gets.
func (s *Store) scanConsumer(ctx context.Context, h *streamHandles, filter string, seq, end uint64, fn func(rawMsg) (bool, error)) error {
	cons, err := s.readConsumer(ctx, h, filter, seq)
	if err != nil {
		return err
	}
	defer s.deleteReadConsumer(ctx, h, cons)
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
		m, ok, err := s.nextMsg(ctx, h, filter, seq, end)
		if !ok || err != nil {
			return err
		}
		if !direct {
			direct = true
			s.log.Debug("nats: read consumer came back empty with messages left; reading on by direct gets", "filter", filter, "seq", m.seq, "end", end)
		}
		more, err := fn(m)
		if err != nil || !more {
			return err
		}
		seq = m.seq + 1
	}
	return nil
}

// readConsumer creates the ephemeral consumer of a read of filter from
// sequence seq on.
func (s *Store) readConsumer(ctx context.Context, h *streamHandles, filter string, seq uint64) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       seq,
		FilterSubject:     filter,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute, // the server removes it if this process dies mid-read
		MemoryStorage:     true,
		Replicas:          1,
	}
	if filter == s.eventsSubject() {
		// The stream's only subject: unfiltered, 2.9 counts pending exactly,
		// so a no-wait fetch is not refused while messages remain.
		cfg.FilterSubject = ""
	}
	cons, err := h.events.CreateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("nats: read %s from %d: %w", filter, seq, err)
	}
	return cons, nil
}

// deleteReadConsumer deletes a read's consumer, even when the read's
// context has ended.
func (s *Store) deleteReadConsumer(ctx context.Context, h *streamHandles, cons jetstream.Consumer) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := h.events.DeleteConsumer(dctx, cons.CachedInfo().Name); err != nil {
		s.log.Debug("nats: delete read consumer", "err", err)
	}
}

// fetchBatch passes fn the messages of one no-wait fetch from cons at or
// after seq, and returns the sequence to read from next: seq itself when the
// fetch brought nothing new. more is false once fn says stop or the fetch
// has passed end.
func (s *Store) fetchBatch(ctx context.Context, cons jetstream.Consumer, filter string, seq, end uint64, fn func(rawMsg) (bool, error)) (next uint64, more bool, err error) {
	batch, err := cons.FetchNoWait(int(min(end-seq+1, uint64(s.cfg.batch))))
	if err != nil {
		return seq, false, fmt.Errorf("nats: read %s from %d: %w", filter, seq, err)
	}
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			return seq, false, fmt.Errorf("nats: read %s from %d: %w", filter, seq, err)
		}
		if md.Sequence.Stream < seq {
			continue // already read by a direct get
		}
		if md.Sequence.Stream > end {
			return seq, false, nil
		}
		if err := ctx.Err(); err != nil {
			return seq, false, err
		}
		more, err := fn(rawMsg{subject: m.Subject(), seq: md.Sequence.Stream, data: m.Data(), time: md.Timestamp})
		if err != nil || !more {
			return seq, false, err
		}
		seq = md.Sequence.Stream + 1
	}
	if err := batch.Error(); err != nil {
		return seq, false, fmt.Errorf("nats: read %s from %d: %w", filter, seq, err)
	}
	return seq, true, nil
}

// nextMsg reads the first message on filter at or after seq by a direct
// request; ok is false when there is none (up to end, when end > 0).
func (s *Store) nextMsg(ctx context.Context, h *streamHandles, filter string, seq, end uint64) (rawMsg, bool, error) {
	if err := ctx.Err(); err != nil {
		return rawMsg{}, false, err
	}
	m, err := h.events.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
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

// lastSeq returns the sequence of the last message on filter, 0 when there
// is none: the stream's last sequence for all of the events stream (that
// message may have been purged since; scan copes), else the subject's last
// message.
func (s *Store) lastSeq(ctx context.Context, h *streamHandles, filter string) (uint64, error) {
	if filter == s.eventsSubject() {
		info, err := h.events.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("nats: read %s: %w", filter, err)
		}
		return info.State.LastSeq, nil
	}
	m, err := h.events.GetLastMsgForSubject(ctx, filter)
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
// commit first; when that holds version from, it is the only request.
// Otherwise it reads the stream's commits from its first on.
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
		if from < 1 {
			from = 1
		}
		if to > 0 && to < from {
			return
		}
		subject := s.streamSubject(id)
		lm, first, lastVersion, err := s.lastCommit(ctx, h, id, subject)
		if err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		if from > lastVersion { // also no stream (0), and a deleted stream's tombstone (-1)
			return
		}
		if first <= from {
			c, err := s.decode(lm, id)
			if err != nil {
				yield(eventsource.Record{}, err)
				return
			}
			yieldVersions(c, from, to, yield)
			return
		}
		start, startVersion, err := s.scanStart(ctx, h, subject, from, lm.seq)
		if err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		stopped := false
		err = s.scan(ctx, h, subject, start, lm.seq, int(min(lastVersion-startVersion+1, 1<<30)), func(m rawMsg) (bool, error) {
			if f, n, err := commitHeader(m.data); err == nil && f+int64(n)-1 < from {
				return true, nil // before the range: skip without unpacking
			}
			c, err := s.decode(m, id)
			if err != nil {
				return false, err
			}
			more := yieldVersions(c, from, to, yield)
			stopped = !more
			return more, nil
		})
		if err != nil && !stopped {
			yield(eventsource.Record{}, err)
		}
	}
}

// lastCommit reads the last message on subject, the newest commit of stream
// id, and the versions it holds: first to last (last is -1 for a deleted
// stream's tombstone, and 0 when the subject has no message).
func (s *Store) lastCommit(ctx context.Context, h *streamHandles, id, subject string) (m rawMsg, first, last int64, err error) {
	msg, err := h.events.GetLastMsgForSubject(ctx, subject)
	if notFound(err) {
		return rawMsg{}, 0, 0, nil
	}
	if err != nil {
		return rawMsg{}, 0, 0, fmt.Errorf("nats: read stream %q: %w", id, err)
	}
	m = rawMsg{subject: msg.Subject, seq: msg.Sequence, data: msg.Data, time: msg.Time}
	first, count, err := commitHeader(m.data)
	if err != nil {
		return rawMsg{}, 0, 0, &eventsource.DecodeError{Stream: id, Type: "commit", Err: err}
	}
	return m, first, first + int64(count) - 1, nil
}

// yieldVersions yields the records of c within [from, to] (to <= 0: no
// end). It returns false once past to or when yield says stop.
func yieldVersions(c commit, from, to int64, yield func(eventsource.Record, error) bool) (more bool) {
	for _, r := range c.recs {
		if r.Version < from {
			continue
		}
		if to > 0 && r.Version > to {
			return false
		}
		if !yield(r, nil) {
			return false
		}
	}
	return to <= 0 || c.last() < to
}

// scanStart returns where a read of the stream on subject from version
// from begins, up to end (its last commit): with many versions to skip, the
// sequence and first version of the commit that holds from (found by seek)
// rather than the stream's first; otherwise, or when seek finds none,
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
// commit), the commit of the stream on subject that holds version v: its
// sequence and first version, or 0 when no commit holds v (the stream's
// early commits expired, say). Each step is one direct get, so a commit
// among n messages is found in about log2(n) requests.
func (s *Store) seek(ctx context.Context, h *streamHandles, subject string, v int64, end uint64) (uint64, int64, error) {
	lo, hi := uint64(1), end // the commit, if any, lies in [lo, hi]
	for lo <= hi {
		mid := lo + (hi-lo)/2
		m, ok, err := s.nextMsg(ctx, h, subject, mid, hi)
		if err != nil {
			return 0, 0, err
		}
		if !ok { // nothing of the stream in [mid, hi]
			hi = mid - 1
			continue
		}
		first, count, err := commitHeader(m.data)
		if err != nil {
			return 0, 0, &eventsource.DecodeError{Type: "commit", Err: fmt.Errorf("message %d: %w", m.seq, err)}
		}
		switch {
		case first+int64(count)-1 < v: // also a tombstone: what precedes it is gone
			lo = m.seq + 1
		case first > v: // and nothing of the stream lies in [mid, m.seq)
			hi = mid - 1
		default:
			return m.seq, first, nil
		}
	}
	return 0, 0, nil
}

// ReadAll implements eventsource.Store. A record's position is its commit
// message's stream sequence << 16 | its index in the commit, so positions
// follow the order in which JetStream stored the commits: a reader never
// skips one. With one stream in the filter (and no prefixes) the read asks
// the server for that stream's subject only; other filters are applied here.
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
		err = s.scan(ctx, h, filter, seq, 0, 0, func(m rawMsg) (bool, error) {
			stream, err := s.streamOf(m.subject)
			if err != nil {
				return false, err
			}
			c, err := s.decode(m, stream)
			if err != nil {
				return false, err
			}
			for i := range c.recs {
				r := &c.recs[i]
				if r.Position < from || !f.Match(r) {
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
// the newest commit. When that commit's stream has been deleted (or the
// newest message is a deletion's tombstone), it is the largest position the
// message could have held (its sequence << 16 | 0xFFFF), still below every
// later position.
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
	_, count, err := commitHeader(m.Data)
	if err != nil {
		return 0, &eventsource.DecodeError{Type: "commit", Err: fmt.Errorf("message %d: %w", last, err)}
	}
	if count == 0 { // a tombstone
		return last<<16 | 0xFFFF, nil
	}
	return last<<16 | uint64(count-1), nil
}

// ListStreams implements eventsource.StreamLister. JetStream lists the
// subjects of the events stream (all of them: a prefix of a stream ID is not
// a prefix of subject tokens the server can filter on), the store decodes,
// filters and sorts them, then reads each listed stream's version (one
// request per stream).
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
			if hd.version == 0 {
				continue // deleted meanwhile
			}
			if !yield(eventsource.StreamInfo{StreamID: id, Version: hd.version}, nil) {
				return
			}
		}
	}
}

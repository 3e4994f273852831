package nats

import (
	"context"
	"fmt"

	"github.com/eventsource-go/eventsource"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeleteStream implements eventsource.StreamDeleter. It publishes a
// tombstone on the stream's subject with the expected sequence of the commit
// it checked against expected: an append landing in between makes it check
// again (and fail, for an exact version), and an append after it starts the
// stream again at version 1. It then purges the subject up to the tombstone
// and deletes the claims of the event IDs callers supplied, so they can be
// used again (generated IDs are free once their place is gone); it reads
// the stream first to learn them.
//
// With eventsource.Any or StreamExists, a stream that keeps growing under
// the check (writers appending without pause) would starve the delete, so
// after a few lost rounds the tombstone goes out without an expectation and
// deletes whatever precedes it.
func (s *Store) DeleteStream(ctx context.Context, id string, expected eventsource.ExpectedVersion) error {
	if err := eventsource.ValidateStreamID(id); err != nil {
		return err
	}
	if expected < eventsource.StreamExists {
		return fmt.Errorf("%w: expected version %d", eventsource.ErrInvalidEvent, int64(expected))
	}
	h, err := s.handles(ctx)
	if err != nil {
		return err
	}
	d := &deletion{s: s, h: h, stream: id}
	for round := 0; ; round++ {
		cur, err := s.readHead(ctx, h, id)
		if err != nil {
			return err
		}
		if cur.version == 0 {
			return fmt.Errorf("%w: stream %q", eventsource.ErrNotFound, id)
		}
		if !expected.Matches(cur.version) {
			return &eventsource.ConcurrencyError{Stream: id, Expected: expected, Actual: cur.version}
		}
		if err := d.collect(ctx, cur.seq, cur.version-d.version); err != nil {
			return err
		}
		var opts []jetstream.PublishOpt
		expecting := expected >= 0 || round < 3
		if expecting {
			opts = append(opts, jetstream.WithExpectLastSequencePerSubject(cur.seq))
		}
		tomb := &natsgo.Msg{Subject: s.streamSubject(id), Data: []byte{tombstoneFormat}}
		ack, err := s.js.PublishMsg(ctx, tomb, opts...)
		if wrongSeq(err) {
			continue // an append landed since the check
		}
		if err != nil {
			return fmt.Errorf("nats: delete stream %q: %w", id, err)
		}
		s.heads.Drop(id)
		if !expecting { // commits may have landed since the check
			if err := d.collect(ctx, ack.Sequence-1, 0); err != nil {
				return err
			}
		}
		return d.finish(ctx, ack.Sequence)
	}
}

// deletion learns, commit by commit, the event IDs a stream about to be
// deleted holds (so each round of DeleteStream reads only what landed since
// the last), then purges the stream and releases their claims.
type deletion struct {
	s       *Store
	h       *streamHandles
	stream  string
	ids     []string // supplied event IDs of versions 1..version
	version int64    // versions read so far
	seq     uint64   // sequence of the commit that ends at version
}

// collect reads the stream's commits after the last one read, up to the
// message at end; want bounds how many there are (0: unknown). A tombstone
// met on the way ends what came before it.
func (d *deletion) collect(ctx context.Context, end uint64, want int64) error {
	if end <= d.seq {
		return nil
	}
	s, id := d.s, d.stream
	restart := false
	err := s.scan(ctx, d.h, s.streamSubject(id), d.seq+1, end, int(min(max(want, 0), 1<<30)), func(m rawMsg) (bool, error) {
		c, err := s.decode(m, id)
		if err != nil {
			return false, err
		}
		switch {
		case len(c.recs) == 0: // a tombstone: what precedes it is gone
			d.ids, d.version, d.seq = nil, 0, m.seq
			return true, nil
		case c.first != d.version+1 && d.seq > 0: // the stream was deleted and began again
			restart = true
			return false, nil
		}
		for _, r := range c.recs {
			if r.EventID != generatedID(id, r.Version, r.Position>>16, int(r.Position&0xffff)) {
				d.ids = append(d.ids, r.EventID) // supplied by the caller, so claimed
			}
		}
		d.version, d.seq = c.last(), m.seq // from the start, a stream may begin past 1 (WithMaxAge)
		return true, nil
	})
	if err == nil && restart {
		d.ids, d.version, d.seq = nil, 0, 0
		return d.collect(ctx, end, 0)
	}
	return err
}

// finish completes the deletion whose tombstone is at tomb, once d has read
// every commit before it: it finds the claims of their supplied IDs, purges
// the subject up to the tombstone, then deletes those claim messages (a
// claim made since, by a new append of the same ID, is another message and
// stays). Whoever purges first has read every commit, so some finisher
// releases every claim.
func (d *deletion) finish(ctx context.Context, tomb uint64) error {
	var claims []uint64
	for _, eid := range d.ids {
		c, found, err := d.s.readClaim(ctx, d.h, eid)
		if err != nil {
			return err
		}
		if found && c.seq > 0 && c.stream == d.stream && c.version <= d.version {
			claims = append(claims, c.seq)
		}
	}
	if err := d.h.events.Purge(ctx, jetstream.WithPurgeSubject(d.s.streamSubject(d.stream)), jetstream.WithPurgeSequence(tomb+1)); err != nil {
		return fmt.Errorf("nats: delete stream %q: purge: %w", d.stream, err)
	}
	for _, seq := range claims {
		if err := deleteClaim(ctx, d.h, seq); err != nil {
			return fmt.Errorf("nats: delete stream %q: release an event ID claim: %w", d.stream, err)
		}
	}
	return d.s.purgeSnapshots(ctx, d.stream)
}

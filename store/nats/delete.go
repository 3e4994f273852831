package nats

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// deletion finishes a delete an earlier version of this package began and
// did not complete: its DeleteStream published a tombstone (tombstoneFormat)
// on the stream's subject, then purged the subject up to it and released
// the claims of the event IDs it removed; a process that died in between
// left the tombstone as the subject's last message. deletion reads the
// commits before it (to learn their supplied event IDs), purges them with
// the tombstone and releases the claims, and the stream starts again at
// version 1, as that version promised. This version's deletes are soft or
// hard lifecycle writes (lifecycle.go) and write no tombstone.
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
	err := s.scan(ctx, d.h.events, s.streamSubject(id), d.seq+1, end, int(min(max(want, 0), 1<<30)), func(page []rawMsg) (bool, error) {
		for _, m := range page {
			mi, err := parseMsg(m.data)
			if err != nil {
				_, err = s.decode(m, id) // the error, as a read reports it
				return false, err
			}
			switch {
			case mi.legacy: // what precedes it is gone
				d.ids, d.version, d.seq = nil, 0, m.seq
				continue
			case mi.marker:
				continue
			case mi.first != d.version+1 && d.seq > 0: // the stream was deleted and began again
				restart = true
				return false, nil
			}
			c, err := s.decode(m, id)
			if err != nil {
				return false, err
			}
			d.ids = append(d.ids, suppliedIDs(c)...)
			d.version, d.seq = c.last(), m.seq // from the start, a stream may begin past 1 (WithMaxAge)
		}
		return true, nil
	})
	if err == nil && restart {
		d.ids, d.version, d.seq = nil, 0, 0
		return d.collect(ctx, end, 0)
	}
	return err
}

// finish completes the deletion whose tombstone is at tomb, once d has read
// every commit before it: it purges the subject up to the tombstone and
// releases the claims of the IDs the commits held (see releaseClaims).
// Whoever purges first has read every commit, so some finisher releases
// every claim.
func (d *deletion) finish(ctx context.Context, tomb uint64) error {
	claims, err := d.s.claimsOf(ctx, d.h, d.stream, d.ids, d.version)
	if err != nil {
		return err
	}
	if err := d.h.events.Purge(ctx, jetstream.WithPurgeSubject(d.s.streamSubject(d.stream)), jetstream.WithPurgeSequence(tomb+1)); err != nil {
		return fmt.Errorf("nats: delete stream %q: purge: %w", d.stream, err)
	}
	if err := d.s.releaseClaims(ctx, d.h, d.stream, claims); err != nil {
		return err
	}
	return d.s.purgeSnapshots(ctx, d.stream)
}

// suppliedIDs returns the event IDs of c that its caller supplied (and the
// index therefore claims); generated ones need no release.
func suppliedIDs(c commit) []string {
	var ids []string
	for _, r := range c.recs {
		if r.EventID != generatedID(r.StreamID, r.Version, r.Position>>16, int(r.Position&0xffff)) {
			ids = append(ids, r.EventID)
		}
	}
	return ids
}

// claimsOf finds, before the commits holding ids are purged, the index
// messages that claim them for stream at a version up to through. A claim
// made since (a new append of the same ID) is another message and stays.
func (s *Store) claimsOf(ctx context.Context, h *streamHandles, stream string, ids []string, through int64) ([]uint64, error) {
	var claims []uint64
	for _, eid := range ids {
		c, found, err := s.readClaim(ctx, h, eid)
		if err != nil {
			return nil, err
		}
		if found && c.seq > 0 && c.stream == stream && c.version <= through {
			claims = append(claims, c.seq)
		}
	}
	return claims, nil
}

// releaseClaims deletes the claim messages claimsOf found, once their
// commits are purged: their event IDs can be used again.
func (s *Store) releaseClaims(ctx context.Context, h *streamHandles, stream string, claims []uint64) error {
	for _, seq := range claims {
		if err := deleteClaim(ctx, h, seq); err != nil {
			return fmt.Errorf("nats: stream %q: release an event ID claim: %w", stream, err)
		}
	}
	return nil
}

package nats

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
)

// Scavenge implements eventsource.Scavenger. For each stream whose
// lifecycle entry retires something, in stream ID order, it purges from the
// stream's subject the commits whose records are all retired, up to the
// first commit that holds a visible record, in one purge request (a
// JetStream purge by subject and sequence: atomic, and positions are never
// reused), then releases the index claims of the event IDs those commits
// held, so they can be used again. It keeps each stream's last message,
// which holds the stream's version.
//
// A commit is one message and JetStream cannot edit a message, so a commit
// that holds visible records keeps its retired ones too (they stay hidden)
// until a later rule retires the rest of it: ScavengeResult.Removed counts
// the records of the commits purged. See the package documentation.
func (s *Store) Scavenge(ctx context.Context, opts eventsource.ScavengeOptions) (eventsource.ScavengeResult, error) {
	var res eventsource.ScavengeResult
	h, err := s.handles(ctx)
	if err != nil {
		return res, err
	}
	ids, err := s.ruled(ctx, opts.After)
	if err != nil {
		return res, err
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		removed, examined, err := s.scavengeStream(ctx, h, id)
		if err != nil {
			return res, err
		}
		if !examined {
			continue
		}
		res.Streams++
		res.Removed += removed
		res.Last = id
		if opts.Progress != nil {
			opts.Progress(res)
		}
	}
	return res, nil
}

// scavengeStream purges what stream id's retention retires; examined is
// false when it retires nothing.
func (s *Store) scavengeStream(ctx context.Context, h *streamHandles, id string) (removed int64, examined bool, err error) {
	// Settle the entry first: an intent's marker must not be purged before
	// the intent is recorded as committed. An entry that changes before the
	// head is read is settled again; a marker landing later lies past the
	// head, which the purge never reaches.
	var st lcState
	var hd head
	for {
		e, err := s.readEntry(ctx, id)
		if err != nil {
			return 0, false, err
		}
		var seq uint64
		if st, seq, err = s.settle(ctx, h, id, e); err != nil {
			return 0, false, err
		}
		if hd, err = s.readHead(ctx, h, id); err != nil {
			return 0, false, err
		}
		again, err := s.readEntry(ctx, id)
		if err != nil {
			return 0, false, err
		}
		if again.seq == seq {
			break
		}
	}
	ret := st.at(hd.version)
	if ret.IsZero() {
		return 0, false, nil
	}
	if hd.seq <= 1 {
		return 0, true, nil
	}
	subject := s.streamSubject(id)
	now := time.Now()
	keep := hd.seq // the first message that stays
	var ids []string
	var through int64 // last version purged
	purged := false   // anything before keep
	want := int(min(max(ret.Cut-1, 1), max(hd.version, 1), 1<<30))
	err = s.scan(ctx, h.events, subject, 1, hd.seq-1, want, func(page []rawMsg) (bool, error) {
		for _, m := range page {
			mi, err := parseMsg(m.data)
			if err != nil {
				return false, &eventsource.DecodeError{Stream: id, Type: "commit", Err: fmt.Errorf("message %d: %w", m.seq, err)}
			}
			if mi.count > 0 {
				// The records of a commit share its time, and its last is
				// the one a cut retires last.
				if ret.Visible(mi.version, m.time, now) {
					keep = m.seq
					return false, nil
				}
				c, err := s.decode(m, id)
				if err != nil {
					return false, err
				}
				ids = append(ids, suppliedIDs(c)...)
				removed += int64(mi.count)
				through = mi.version
			}
			purged = true
		}
		return true, nil
	})
	if err != nil || !purged {
		return 0, true, err
	}
	claims, err := s.claimsOf(ctx, h, id, ids, through)
	if err != nil {
		return 0, true, err
	}
	if err := h.events.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeSequence(keep)); err != nil {
		return 0, true, fmt.Errorf("nats: scavenge stream %q: purge: %w", id, err)
	}
	return removed, true, s.releaseClaims(ctx, h, id, claims)
}

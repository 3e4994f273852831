package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// Snapshots live in a third JetStream stream, <stream>_SNAPSHOTS, created on
// the first SaveSnapshot (Setup and Verify leave it alone, so a store
// without snapshots has none): one message per snapshot on the subject
// <prefix>-snap.<stream>, its version and schema in headers. The server
// keeps the newest 64 snapshots of each stream (MaxMsgsPerSubject), so a
// LoadVersion far in a long stream's past may find none and load from the
// events. DeleteStream and TombstoneStream purge the stream's snapshots
// (before their marker and again after it, so that one saved meanwhile goes
// too).
const snapshotsPerStream = 64

const (
	hdrSnapVersion = "Es-Snapshot-Version"
	hdrSnapSchema  = "Es-Snapshot-Schema"
	hdrSnapPos     = "Es-Snapshot-Position"
)

func (s *Store) snapshotsStream() string { return s.cfg.stream + "_SNAPSHOTS" }

func (s *Store) snapshotSubject(stream string) string {
	return s.cfg.prefix + "-snap." + encodeToken(stream)
}

// snaps returns the snapshots stream; create makes it when it is missing
// (unless WithoutAutoSetup). A missing one is ErrNotFound.
func (s *Store) snaps(ctx context.Context, create bool) (jetstream.Stream, error) {
	if st := s.snapStream.Load(); st != nil {
		return *st, nil
	}
	var st jetstream.Stream
	var err error
	if create && !s.cfg.noSetup {
		st, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:              s.snapshotsStream(),
			Description:       "eventsource snapshots: the newest of each stream",
			Subjects:          []string{s.cfg.prefix + "-snap.>"},
			Retention:         jetstream.LimitsPolicy,
			MaxMsgsPerSubject: snapshotsPerStream,
			MaxMsgs:           -1,
			MaxBytes:          -1,
			Storage:           s.cfg.storage,
			Replicas:          s.cfg.replicas,
		})
	} else {
		st, err = s.js.Stream(ctx, s.snapshotsStream())
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: nats: no snapshots stream %s", eventsource.ErrNotFound, s.snapshotsStream())
	}
	if err != nil {
		return nil, fmt.Errorf("nats: snapshots stream %s: %w", s.snapshotsStream(), err)
	}
	s.snapStream.Store(&st)
	return st, nil
}

// SaveSnapshot implements eventsource.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventsource.Snapshot) error {
	if err := storekit.ValidateSnapshot(snap, s.Limits()); err != nil {
		return err
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	st, err := s.snaps(ctx, true)
	if err != nil {
		return err
	}
	// The subject's last message is always its highest version, so a load
	// of the newest is one get: a snapshot older than the last is followed
	// by the last again. The expected subject sequence makes the pair safe
	// against a concurrent save.
	subj := s.snapshotSubject(snap.StreamID)
	for attempt := 0; ; attempt++ {
		var lastSeq uint64
		var newest *jetstream.RawStreamMsg
		last, err := st.GetLastMsgForSubject(ctx, subj)
		switch {
		case err == nil:
			lastSeq = last.Sequence
			if cur, err := snapshotOf(snap.StreamID, last); err == nil && cur.Version > snap.Version {
				newest = last
			}
		case !notFound(err):
			return fmt.Errorf("nats: save snapshot of %q at %d: %w", snap.StreamID, snap.Version, err)
		}
		ack, err := s.js.PublishMsg(ctx, snapshotMsg(subj, snap), jetstream.WithExpectLastSequencePerSubject(lastSeq))
		if err == nil && newest != nil {
			var again eventsource.Snapshot
			if again, err = snapshotOf(snap.StreamID, newest); err == nil {
				_, err = s.js.PublishMsg(ctx, snapshotMsg(subj, again), jetstream.WithExpectLastSequencePerSubject(ack.Sequence))
			}
		}
		if wrongSeq(err) && attempt < 10 {
			continue // a concurrent save came first: look again
		}
		if err != nil {
			return fmt.Errorf("nats: save snapshot of %q at %d: %w", snap.StreamID, snap.Version, err)
		}
		return nil
	}
}

func snapshotMsg(subj string, snap eventsource.Snapshot) *natsgo.Msg {
	msg := natsgo.NewMsg(subj)
	msg.Header.Set(hdrSnapVersion, strconv.FormatInt(snap.Version, 10))
	msg.Header.Set(hdrSnapSchema, strconv.Itoa(snap.Schema))
	msg.Header.Set(hdrSnapPos, strconv.FormatUint(snap.Position, 10))
	msg.Data = snap.Data
	return msg
}

// LoadSnapshot implements eventsource.SnapshotStore: one direct get of the
// stream's last snapshot; a version below it walks the kept ones.
func (s *Store) LoadSnapshot(ctx context.Context, stream string, atMost int64) (eventsource.Snapshot, error) {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return eventsource.Snapshot{}, err
	}
	if err := s.usable(ctx); err != nil {
		return eventsource.Snapshot{}, err
	}
	none := storekit.NoSnapshot(stream, atMost)
	st, err := s.snaps(ctx, false)
	if errors.Is(err, eventsource.ErrNotFound) {
		return eventsource.Snapshot{}, none
	}
	if err != nil {
		return eventsource.Snapshot{}, err
	}
	subj := s.snapshotSubject(stream)
	last, err := st.GetLastMsgForSubject(ctx, subj)
	if notFound(err) {
		return eventsource.Snapshot{}, none
	}
	if err != nil {
		return eventsource.Snapshot{}, fmt.Errorf("nats: load snapshot of %q: %w", stream, err)
	}
	best, err := snapshotOf(stream, last)
	if err != nil || atMost <= 0 || best.Version <= atMost {
		return best, err
	}
	found := false
	for seq := uint64(1); seq <= last.Sequence; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if notFound(err) {
			break
		}
		if err != nil {
			return eventsource.Snapshot{}, fmt.Errorf("nats: load snapshot of %q: %w", stream, err)
		}
		snap, err := snapshotOf(stream, m)
		if err != nil {
			return eventsource.Snapshot{}, err
		}
		if snap.Version <= atMost && (!found || snap.Version >= best.Version) {
			best, found = snap, true // a later message at the same version replaces an earlier one
		}
		seq = m.Sequence + 1
	}
	if !found {
		return eventsource.Snapshot{}, none
	}
	return best, nil
}

func snapshotOf(stream string, m *jetstream.RawStreamMsg) (eventsource.Snapshot, error) {
	v, err1 := strconv.ParseInt(m.Header.Get(hdrSnapVersion), 10, 64)
	schema, err2 := strconv.Atoi(m.Header.Get(hdrSnapSchema))
	pos, _ := strconv.ParseUint(m.Header.Get(hdrSnapPos), 10, 64)
	if err1 != nil || err2 != nil {
		return eventsource.Snapshot{}, fmt.Errorf("%w: snapshot of %q at sequence %d: bad headers", eventsource.ErrCorruptData, stream, m.Sequence)
	}
	return eventsource.Snapshot{StreamID: stream, Version: v, Position: pos, Schema: schema, Data: m.Data, RecordedAt: m.Time.UTC()}, nil
}

// purgeSnapshots removes a deleted stream's snapshots, if there are any.
func (s *Store) purgeSnapshots(ctx context.Context, stream string) error {
	st, err := s.snaps(ctx, false)
	if errors.Is(err, eventsource.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(s.snapshotSubject(stream))); err != nil {
		return fmt.Errorf("nats: stream %q: purge its snapshots: %w", stream, err)
	}
	return nil
}

var _ eventsource.SnapshotStore = (*Store)(nil)

package nats

import (
	"context"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
)

var (
	EncodeToken = encodeToken
	DecodeToken = decodeToken
)

// PlantClaim publishes a claim of eventID for stream at version, as an
// append that died before its commit would leave it.
func PlantClaim(ctx context.Context, s *Store, eventID, stream string, version int64) error {
	body := encodeClaim(claim{stream: stream, version: version, token: "dead-append"})
	_, err := s.js.PublishMsg(ctx, &natsgo.Msg{Subject: s.claimSubject(eventID), Data: body}, jetstream.WithExpectLastSequencePerSubject(0))
	return err
}

// PurgeStream removes every message of stream id, behind the store's back.
func PurgeStream(ctx context.Context, s *Store, id string) error {
	h, err := s.handles(ctx)
	if err != nil {
		return err
	}
	return h.events.Purge(ctx, jetstream.WithPurgeSubject(s.streamSubject(id)))
}

// Subject is the subject of stream id's commits.
func Subject(s *Store, id string) string { return s.streamSubject(id) }

var (
	GeneratedID      = generatedID
	ParseGeneratedID = parseGeneratedID
)

// PlantWrite leaves the lifecycle write of kind ("metadata", "delete",
// "tombstone") on stream as a writer that died would: its intent in the
// index and, with marker, its marker on the stream's subject, never
// recorded as committed. exact is the intent's: its marker must follow the
// stream's last message as it is now.
func PlantWrite(ctx context.Context, s *Store, stream, kind string, md eventsource.StreamMetadata, exact, marker bool) error {
	h, err := s.handles(ctx)
	if err != nil {
		return err
	}
	e, err := s.readEntry(ctx, stream)
	if err != nil {
		return err
	}
	cur, seq, err := s.settle(ctx, h, stream, e)
	if err != nil {
		return err
	}
	hd, err := s.readHead(ctx, h, stream)
	if err != nil {
		return err
	}
	in := &intent{kind: kind, md: md, prev: cur, basis: hd.seq, head: hd.version, exact: exact, at: time.Now().UTC()}
	iseq, err := s.putEntry(ctx, stream, entry{intent: in}, seq)
	if err != nil || !marker {
		return err
	}
	msg := &natsgo.Msg{Subject: s.streamSubject(stream), Data: encodeMarker(hd.version, iseq, kind == kindTombstone)}
	_, err = s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(hd.seq))
	return err
}

// PlantLegacyTombstone publishes the tombstone an earlier version's
// DeleteStream left when it died before its purge.
func PlantLegacyTombstone(ctx context.Context, s *Store, stream string) error {
	_, err := s.js.Publish(ctx, s.streamSubject(stream), []byte{tombstoneFormat})
	return err
}

// DropIndex deletes the lifecycle index stream, as a store set up by an
// earlier version of this package is without it.
func DropIndex(ctx context.Context, s *Store) error {
	return s.js.DeleteStream(ctx, s.metaStreamName())
}

// StreamName and Prefix are the store's events stream and subject prefix.
func StreamName(s *Store) string { return s.cfg.stream }
func Prefix(s *Store) string     { return s.cfg.prefix }

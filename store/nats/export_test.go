package nats

import (
	"context"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

package nats_test

import (
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint/sqlcheckpointtest"
)

// Parallel projectors over the NATS store's log, streams of its own per
// subtest, on each target: order per key, exactly once across kills,
// parking, blue/green (read models in SQLite).
func TestProjections(t *testing.T) {
	for name, tgt := range targets(t) {
		t.Run(name, func(t *testing.T) {
			tg := tgt(t)
			sqlcheckpointtest.RunEvents(t, func(t *testing.T) eventsource.Store { return newStore(t, tg) })
		})
	}
}

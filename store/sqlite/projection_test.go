package sqlite_test

import (
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint/sqlcheckpointtest"
)

// Parallel projectors over the SQLite store's log: order per key, exactly
// once across kills, parking, blue/green (read models in another SQLite
// file).
func TestProjections(t *testing.T) {
	sqlcheckpointtest.RunEvents(t, func(t *testing.T) eventsource.Store { return newStore(t) })
}

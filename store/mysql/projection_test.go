package mysql_test

import (
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint/sqlcheckpointtest"
)

// Parallel projectors over the MySQL store's log, a table prefix per
// subtest: order per key, exactly once across kills, parking, blue/green
// (read models in SQLite).
func TestProjections(t *testing.T) {
	sqlcheckpointtest.RunEvents(t, func(t *testing.T) eventsource.Store {
		s, _ := newStore(t)
		return s
	})
}

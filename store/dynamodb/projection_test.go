package dynamodb_test

import (
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint/sqlcheckpointtest"
)

// Parallel projectors over the DynamoDB store's log, a table per subtest:
// order per key, exactly once across kills, parking, blue/green (read
// models in SQLite).
func TestProjections(t *testing.T) {
	sqlcheckpointtest.RunEvents(t, func(t *testing.T) eventsource.Store {
		s, _, _ := newStore(t)
		return s
	})
}

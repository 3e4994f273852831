package memory_test

import (
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint/sqlcheckpointtest"
	"github.com/eventsource-go/eventsource/store/memory"
)

// Parallel projectors over the memory store's log: order per key, exactly
// once across kills, parking, blue/green (read models in SQLite).
func TestProjections(t *testing.T) {
	sqlcheckpointtest.RunEvents(t, func(*testing.T) eventsource.Store { return memory.New() })
}

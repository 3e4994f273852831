package mysql_test

import (
	"database/sql"
	"testing"

	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint"
	"github.com/eventsource-go/eventsource/projection/sqlcheckpoint/sqlcheckpointtest"
)

// Projection checkpoints and a read model in MySQL (sqlcheckpoint), exactly
// once.
func TestCheckpoints(t *testing.T) {
	sqlcheckpointtest.Run(t, sqlcheckpoint.MySQL, func(t *testing.T) *sql.DB { return testDB(t) })
}

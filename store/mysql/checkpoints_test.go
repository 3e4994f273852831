package mysql_test

import (
	"database/sql"
	"testing"

	"github.com/eventsource-go/eventsource/projection/sqlstore"
	"github.com/eventsource-go/eventsource/projection/sqlstore/sqlstoretest"
)

// Projection checkpoints and a read model in MySQL (sqlstore), exactly
// once.
func TestCheckpoints(t *testing.T) {
	sqlstoretest.Run(t, sqlstore.MySQL, func(t *testing.T) *sql.DB { return testDB(t) })
}

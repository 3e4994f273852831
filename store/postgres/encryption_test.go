package postgres_test

import (
	"database/sql"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/encryption/encryptiontest"
	"github.com/eventsource-go/eventsource/encryption/sqlkeys"
	"github.com/eventsource-go/eventsource/encryption/sqlkeys/sqlkeystest"
	"github.com/eventsource-go/eventsource/internal/testenv"
)

// Keys in PostgreSQL (sqlkeys), with and without a master key.
func TestKeyStore(t *testing.T) {
	db, err := sql.Open("pgx", testenv.Postgres.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sqlkeystest.Run(t, db, sqlkeys.Postgres)
}

// Crypto-shredding on PostgreSQL, keys in the same database (sqlkeys).
func TestEncryption(t *testing.T) {
	encryptiontest.Run(t, func(t *testing.T) (eventsource.Store, encryption.KeyStore) {
		s, _ := newStore(t)
		db, err := sql.Open("pgx", testenv.Postgres.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		prefix := testenv.Name("k") + "_"
		keys, err := sqlkeys.New(db, sqlkeys.Postgres, sqlkeys.WithTablePrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + prefix + "encryption_keys") })
		return s, keys
	})
}

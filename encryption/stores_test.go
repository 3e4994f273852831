package encryption_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/encryption/encryptiontest"
	"github.com/eventsource-go/eventsource/encryption/sqlkeys"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/store/sqlite"
)

// Crypto-shredding on the core module's stores; each driver module runs
// the suite on its own.
func TestStores(t *testing.T) {
	t.Run("Memory", func(t *testing.T) {
		t.Parallel()
		encryptiontest.Run(t, func(t *testing.T) (eventsource.Store, encryption.KeyStore) {
			return memory.New(), encryption.NewMemoryKeyStore()
		})
	})
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		encryptiontest.Run(t, func(t *testing.T) (eventsource.Store, encryption.KeyStore) {
			path := filepath.Join(t.TempDir(), "events.db")
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			db, err := sql.Open("sqlite", sqlite.DSN(path)) // keys in the same file
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			keys, err := sqlkeys.New(db, sqlkeys.SQLite)
			if err != nil {
				t.Fatal(err)
			}
			return s, keys
		})
	})
}

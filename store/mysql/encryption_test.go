package mysql_test

import (
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/encryption/encryptiontest"
	"github.com/eventsource-go/eventsource/encryption/sqlkeys"
	"github.com/eventsource-go/eventsource/encryption/sqlkeys/sqlkeystest"
)

// Keys in MySQL (sqlkeys), with and without a master key.
func TestKeyStore(t *testing.T) { sqlkeystest.Run(t, testDB(t), sqlkeys.MySQL) }

// Crypto-shredding on MySQL, keys in the same database (sqlkeys).
func TestEncryption(t *testing.T) {
	encryptiontest.Run(t, func(t *testing.T) (eventsource.Store, encryption.KeyStore) {
		s, prefix := newStore(t)
		db := testDB(t)
		keys, err := sqlkeys.New(db, sqlkeys.MySQL, sqlkeys.WithTablePrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS `" + prefix + "encryption_keys`") })
		return s, keys
	})
}

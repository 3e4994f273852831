package dynamodb_test

import (
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/encryption/encryptiontest"
)

// Crypto-shredding on DynamoDB (the keys in memory: the store has no key
// store of its own).
func TestEncryption(t *testing.T) {
	encryptiontest.Run(t, func(t *testing.T) (eventsource.Store, encryption.KeyStore) {
		s, _, _ := newStore(t)
		return s, encryption.NewMemoryKeyStore()
	})
}

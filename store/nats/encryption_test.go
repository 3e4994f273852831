package nats_test

import (
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/encryption/encryptiontest"
	"github.com/eventsource-go/eventsource/store/nats/natskeys"
)

// Crypto-shredding on NATS, keys in a JetStream key-value bucket.
func TestEncryption(t *testing.T) {
	encryptiontest.Run(t, func(t *testing.T) (eventsource.Store, encryption.KeyStore) {
		tg := connect(t, startServer(t, t.TempDir()).ClientURL())
		return newStore(t, tg), natskeys.New(tg.js, natskeys.WithBucket(randomName("keys_")))
	})
}

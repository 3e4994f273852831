package encryption_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource/encryption"
)

// natsKeys is the key store of the NATS store test.
func natsKeys(t *testing.T, js jetstream.JetStream) encryption.KeyStore {
	return encryption.NewMemoryKeyStore()
}

package encryption_test

import (
	"testing"

	"github.com/eventsource-go/eventsource/encryption"
	"github.com/eventsource-go/eventsource/encryption/keystoretest"
)

func TestMemoryKeyStore(t *testing.T) {
	keystoretest.Run(t, func(*testing.T) encryption.KeyStore { return encryption.NewMemoryKeyStore() })
}

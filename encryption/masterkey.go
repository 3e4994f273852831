package encryption

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/eventsource-go/eventsource"
)

// MasterKey wraps data keys (a key-encryption key, KEK) before a KeyStore
// stores them, so a copy of the key table alone decrypts nothing. Keep it
// outside the database (an environment secret, a KMS). It is safe for
// concurrent use.
type MasterKey struct {
	aead cipher.AEAD
}

// NewMasterKey returns a MasterKey from kek, which must be KeySize bytes.
func NewMasterKey(kek []byte) (*MasterKey, error) {
	if len(kek) != KeySize {
		return nil, fmt.Errorf("%w: encryption: master key must be %d bytes, got %d", eventsource.ErrInvalidConfig, KeySize, len(kek))
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("%w: encryption: %w", eventsource.ErrInvalidConfig, err)
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &MasterKey{aead: aead}, nil
}

func (m *MasterKey) String() string { return "encryption.MasterKey{[redacted]}" }

// Wrap seals k's material, bound to subject and version: nonce | sealed key.
func (m *MasterKey) Wrap(subject string, k Key) ([]byte, error) {
	out := make([]byte, nonceSize, nonceSize+len(k.Material)+tagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("encryption: random nonce: %w", err)
	}
	return m.aead.Seal(out, out, k.Material, wrapAD(subject, k.Version)), nil
}

// Unwrap opens what Wrap sealed for subject and version. A wrong master key
// or a changed row is eventsource.ErrCorruptData.
func (m *MasterKey) Unwrap(subject string, version uint32, wrapped []byte) (Key, error) {
	if len(wrapped) < nonceSize+tagSize {
		return Key{}, fmt.Errorf("%w: encryption: wrapped key of subject %q version %d too short", eventsource.ErrCorruptData, subject, version)
	}
	mat, err := m.aead.Open(nil, wrapped[:nonceSize], wrapped[nonceSize:], wrapAD(subject, version))
	if err != nil {
		return Key{}, fmt.Errorf("%w: encryption: key of subject %q version %d does not unwrap (wrong master key?)", eventsource.ErrCorruptData, subject, version)
	}
	return Key{Version: version, Material: mat}, nil
}

func wrapAD(subject string, version uint32) []byte {
	ad := append([]byte("eventsource-kek-v1\x00"), subject...)
	return binary.BigEndian.AppendUint32(append(ad, 0), version)
}

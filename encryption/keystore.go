package encryption

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"

	"github.com/eventsource-go/eventsource"
)

// KeySize is the length of every data key: AES-256.
const KeySize = 32

// MaxSubjectLength is the longest subject ID, in bytes.
const MaxSubjectLength = 255

// Key is one version of a subject's data key. Its String, GoString and
// LogValue never show the key bytes, so a Key printed or logged by mistake
// leaks nothing.
type Key struct {
	Version  uint32 // 1 for a subject's first key
	Material []byte // KeySize random bytes
}

func (k Key) String() string {
	return fmt.Sprintf("encryption.Key{Version: %d, Material: [redacted]}", k.Version)
}
func (k Key) GoString() string { return k.String() }

// LogValue implements slog.LogValuer.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.Int64("version", int64(k.Version)), slog.String("material", "[redacted]"))
}

// KeyStore keeps the data keys of subjects (an aggregate, a customer). Every
// method is safe for concurrent use, across processes for the stores that
// share a database.
//
// A deleted subject stays deleted: Current, Key and Rotate then return a
// *ShreddedError, so new data is never encrypted under a recreated key that
// the old data's readers would mistake for the deleted one. Implementations
// keep a tombstone holding the subject ID only.
type KeyStore interface {
	// Current returns the newest key of subject, creating version 1 on
	// first use. Concurrent first uses create one key.
	Current(ctx context.Context, subject string) (Key, error)
	// Key returns version of subject's key: a *KeyNotFoundError when it
	// never existed, a *ShreddedError when it was deleted.
	Key(ctx context.Context, subject string, version uint32) (Key, error)
	// Rotate makes a new current version and returns it. Older versions
	// are kept, so data they encrypted still decrypts.
	Rotate(ctx context.Context, subject string) (Key, error)
	// Delete destroys every version of subject's key for good
	// (crypto-shredding). Deleting twice, or a subject never used, is not
	// an error.
	Delete(ctx context.Context, subject string) error
}

// NewKey returns version of a key with KeySize bytes from crypto/rand.
func NewKey(version uint32) (Key, error) {
	m := make([]byte, KeySize)
	if _, err := rand.Read(m); err != nil {
		return Key{}, fmt.Errorf("encryption: random key: %w", err)
	}
	return Key{Version: version, Material: m}, nil
}

// clone copies the material, so a caller never shares bytes that Delete
// overwrites.
func (k Key) clone() Key { return Key{Version: k.Version, Material: bytes.Clone(k.Material)} }

// ValidateSubject checks a subject ID: 1 to MaxSubjectLength bytes.
func ValidateSubject(subject string) error {
	if subject == "" || len(subject) > MaxSubjectLength {
		return fmt.Errorf("%w: encryption subject must be 1 to %d bytes, got %d", eventsource.ErrInvalidEvent, MaxSubjectLength, len(subject))
	}
	return nil
}

// MemoryKeyStore is a KeyStore in memory, for tests and single-process use:
// its keys die with the process, and so does every record they encrypted.
type MemoryKeyStore struct {
	mu       sync.Mutex
	keys     map[string][]Key // versions 1..n, in order
	shredded map[string]bool
}

// NewMemoryKeyStore returns an empty MemoryKeyStore.
func NewMemoryKeyStore() *MemoryKeyStore {
	return &MemoryKeyStore{keys: map[string][]Key{}, shredded: map[string]bool{}}
}

// Current implements KeyStore.
func (s *MemoryKeyStore) Current(ctx context.Context, subject string) (Key, error) {
	if err := check(ctx, subject); err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shredded[subject] {
		return Key{}, &ShreddedError{Subject: subject}
	}
	if ks := s.keys[subject]; len(ks) > 0 {
		return ks[len(ks)-1].clone(), nil
	}
	return s.add(subject)
}

// Key implements KeyStore.
func (s *MemoryKeyStore) Key(ctx context.Context, subject string, version uint32) (Key, error) {
	if err := check(ctx, subject); err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shredded[subject] {
		return Key{}, &ShreddedError{Subject: subject}
	}
	ks := s.keys[subject]
	if version < 1 || int(version) > len(ks) {
		return Key{}, &KeyNotFoundError{Subject: subject, Version: version}
	}
	return ks[version-1].clone(), nil
}

// Rotate implements KeyStore.
func (s *MemoryKeyStore) Rotate(ctx context.Context, subject string) (Key, error) {
	if err := check(ctx, subject); err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shredded[subject] {
		return Key{}, &ShreddedError{Subject: subject}
	}
	return s.add(subject)
}

func (s *MemoryKeyStore) add(subject string) (Key, error) {
	k, err := NewKey(uint32(len(s.keys[subject]) + 1))
	if err != nil {
		return Key{}, err
	}
	s.keys[subject] = append(s.keys[subject], k)
	return k.clone(), nil
}

// Delete implements KeyStore. The key bytes are overwritten before they are
// dropped.
func (s *MemoryKeyStore) Delete(ctx context.Context, subject string) error {
	if err := check(ctx, subject); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys[subject] {
		clear(k.Material)
	}
	delete(s.keys, subject)
	s.shredded[subject] = true
	return nil
}

func check(ctx context.Context, subject string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ValidateSubject(subject)
}

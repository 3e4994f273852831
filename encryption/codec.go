package encryption

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/eventsource-go/eventsource"
)

// FormatVersion is the first byte of every ciphertext this package writes.
const FormatVersion = 1

const (
	nonceSize = 12 // AES-GCM's standard 96-bit nonce
	tagSize   = 16
)

// Codec encrypts what an inner codec encodes, with AES-256-GCM under a key of
// the event's subject. Build it with NewCodec. It implements
// eventsource.Codec and eventsource.ContextCodec and is safe for concurrent
// use.
//
// Each ciphertext is
//
//	format version (1 byte) | subject length (1 byte) | subject |
//	key version (4 bytes, big endian) | nonce (12 bytes) | sealed data + tag
//
// and the header (everything before the sealed data) is the additional
// authenticated data, so a changed subject or key version fails to decrypt.
type Codec struct {
	inner   eventsource.Codec
	keys    KeyStore
	subject func(eventsource.Event) string
	redact  bool
}

// Option configures a Codec.
type Option func(*Codec)

// WithSubject chooses the subject whose key encrypts an event (default:
// its AggregateID). Use a data subject's ID (a customer ID field) so that
// deleting that one key shreds that person's data in every stream.
func WithSubject(f func(eventsource.Event) string) Option {
	return func(c *Codec) {
		if f != nil {
			c.subject = f
		}
	}
}

// WithRedaction makes decoding data whose key was deleted succeed, leaving
// the event as its type's zero value (as the registry's constructor made
// it), instead of returning a *ShreddedError. Projections then run past
// shredded events.
func WithRedaction() Option { return func(c *Codec) { c.redact = true } }

// NewCodec returns a codec encrypting inner's output with keys from keys.
// Its name is "enc+" followed by inner's name.
func NewCodec(inner eventsource.Codec, keys KeyStore, opts ...Option) *Codec {
	c := &Codec{inner: inner, keys: keys, subject: eventsource.Event.AggregateID}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Name implements eventsource.Codec: "enc+" and the inner codec's name, so
// records say an encrypting codec wrote them.
func (c *Codec) Name() string { return "enc+" + c.inner.Name() }

// Marshal implements eventsource.Codec: MarshalContext with
// context.Background().
func (c *Codec) Marshal(v any) ([]byte, error) { return c.MarshalContext(context.Background(), v) }

// Unmarshal implements eventsource.Codec: UnmarshalContext with
// context.Background().
func (c *Codec) Unmarshal(data []byte, v any) error {
	return c.UnmarshalContext(context.Background(), data, v)
}

// MarshalContext implements eventsource.ContextCodec. v must be an
// eventsource.Event (the subject is taken from it). The subject's current
// key is fetched with ctx, created on first use; a shredded subject is
// refused with a *ShreddedError.
func (c *Codec) MarshalContext(ctx context.Context, v any) ([]byte, error) {
	e, ok := v.(eventsource.Event)
	if !ok {
		return nil, fmt.Errorf("%w: encryption: %T is not an eventsource.Event", eventsource.ErrInvalidEvent, v)
	}
	subject := c.subject(e)
	if err := ValidateSubject(subject); err != nil {
		return nil, err
	}
	plain, err := marshal(ctx, c.inner, v)
	if err != nil {
		return nil, &redactedError{op: "encryption: inner codec " + c.inner.Name() + " encode", err: err}
	}
	key, err := c.keys.Current(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("encryption: current key of subject %q: %w", subject, err)
	}
	aead, err := newAEAD(key.Material)
	if err != nil {
		return nil, err
	}
	hlen := 1 + 1 + len(subject) + 4 + nonceSize
	out := make([]byte, hlen, hlen+len(plain)+tagSize)
	out[0] = FormatVersion
	out[1] = byte(len(subject))
	copy(out[2:], subject)
	binary.BigEndian.PutUint32(out[2+len(subject):], key.Version)
	nonce := out[hlen-nonceSize : hlen]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("encryption: random nonce: %w", err)
	}
	return aead.Seal(out, nonce, plain, out[:hlen]), nil
}

// UnmarshalContext implements eventsource.ContextCodec. Bytes that are not
// this format, or fail authentication, or name a key that never existed,
// are eventsource.ErrCorruptData; a deleted key is a *ShreddedError (or,
// with WithRedaction, no error and v left untouched).
func (c *Codec) UnmarshalContext(ctx context.Context, data []byte, v any) error {
	plain, inner, err := c.Open(ctx, data)
	if err != nil || plain == nil {
		return err // nil plaintext, nil error: redacted, v keeps its zero value
	}
	if err := unmarshal(ctx, inner, plain, v); err != nil {
		return &redactedError{op: "encryption: inner codec " + inner.Name() + " decode", err: err}
	}
	return nil
}

// Open implements eventsource.OpenCodec: it decrypts data and returns the
// plaintext with the inner codec, so that a registry's upcasters work on the
// plaintext. A shredded subject is a *ShreddedError, or, with redaction, a
// nil plaintext and a nil error.
func (c *Codec) Open(ctx context.Context, data []byte) ([]byte, eventsource.Codec, error) {
	h, err := parseHeader(data)
	if err != nil {
		return nil, nil, err
	}
	key, err := c.keys.Key(ctx, h.subject, h.version)
	var shredded *ShreddedError
	var missing *KeyNotFoundError
	switch {
	case errors.As(err, &shredded):
		if c.redact {
			return nil, c.inner, nil
		}
		return nil, nil, shredded
	case errors.As(err, &missing):
		return nil, nil, fmt.Errorf("%w: encryption: no key version %d of subject %q", eventsource.ErrCorruptData, h.version, h.subject)
	case err != nil:
		return nil, nil, fmt.Errorf("encryption: key version %d of subject %q: %w", h.version, h.subject, err)
	}
	aead, err := newAEAD(key.Material)
	if err != nil {
		return nil, nil, err
	}
	plain, err := aead.Open(nil, data[h.len-nonceSize:h.len], data[h.len:], data[:h.len])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: encryption: authentication failed (subject %q, key version %d)", eventsource.ErrCorruptData, h.subject, h.version)
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, c.inner, nil
}

var _ eventsource.OpenCodec = (*Codec)(nil)

type header struct {
	subject string
	version uint32
	len     int // header bytes, nonce included
}

func parseHeader(data []byte) (header, error) {
	corrupt := func(what string) (header, error) {
		return header{}, fmt.Errorf("%w: encryption: %s", eventsource.ErrCorruptData, what)
	}
	if len(data) < 2 {
		return corrupt("ciphertext too short")
	}
	if data[0] != FormatVersion {
		return corrupt(fmt.Sprintf("unknown format version %d", data[0]))
	}
	n := int(data[1])
	hlen := 2 + n + 4 + nonceSize
	if n == 0 || len(data) < hlen+tagSize {
		return corrupt("ciphertext too short")
	}
	return header{
		subject: string(data[2 : 2+n]),
		version: binary.BigEndian.Uint32(data[2+n:]),
		len:     hlen,
	}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("encryption: key store returned a %d-byte key, want %d", len(key), KeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encryption: %w", err)
	}
	return cipher.NewGCM(b)
}

func marshal(ctx context.Context, c eventsource.Codec, v any) ([]byte, error) {
	if cc, ok := c.(eventsource.ContextCodec); ok {
		return cc.MarshalContext(ctx, v)
	}
	return c.Marshal(v)
}

func unmarshal(ctx context.Context, c eventsource.Codec, data []byte, v any) error {
	if cc, ok := c.(eventsource.ContextCodec); ok {
		return cc.UnmarshalContext(ctx, data, v)
	}
	return c.Unmarshal(data, v)
}

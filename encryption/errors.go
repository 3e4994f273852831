package encryption

import (
	"fmt"

	"github.com/eventsource-go/eventsource"
)

// ShreddedError reports data whose subject's keys were deleted
// (crypto-shredding). It names the subject only, never a key or data, and
// matches eventsource.ErrShredded.
type ShreddedError struct {
	Subject string
}

func (e *ShreddedError) Error() string {
	return fmt.Sprintf("encryption: keys of subject %q were deleted (shredded)", e.Subject)
}

// Unwrap makes errors.Is(err, eventsource.ErrShredded) true.
func (e *ShreddedError) Unwrap() error { return eventsource.ErrShredded }

// KeyNotFoundError reports a subject or key version a KeyStore never held.
// It matches eventsource.ErrNotFound. The codec reports it as
// eventsource.ErrCorruptData: a header naming a key that never existed was
// not written by this store.
type KeyNotFoundError struct {
	Subject string
	Version uint32
}

func (e *KeyNotFoundError) Error() string {
	return fmt.Sprintf("encryption: no key version %d for subject %q", e.Version, e.Subject)
}

// Unwrap makes errors.Is(err, eventsource.ErrNotFound) true.
func (e *KeyNotFoundError) Unwrap() error { return eventsource.ErrNotFound }

// redactedError hides the text of an error that may quote plaintext (a
// decoder's syntax error), keeping it reachable by errors.As.
type redactedError struct {
	op  string
	err error
}

func (e *redactedError) Error() string {
	return fmt.Sprintf("%s: %T (message withheld: it may quote plaintext)", e.op, e.err)
}

func (e *redactedError) Unwrap() error { return e.err }

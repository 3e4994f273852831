package eventsource

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this module returns for one of these conditions
// matches the sentinel with errors.Is; typed errors add the detail.
var (
	// ErrNotFound: the stream or aggregate has no events.
	ErrNotFound = errors.New("eventsource: not found")
	// ErrNoEventsProduced: a command handler returned no events, or Save was
	// called with none.
	ErrNoEventsProduced = errors.New("eventsource: no events produced")
	// ErrConcurrency: the stream's version is not the expected one. Returned
	// as a *ConcurrencyError.
	ErrConcurrency = errors.New("eventsource: concurrency conflict")
	// ErrUnknownEventType: a record's type name is not bound. Returned as an
	// *UnknownEventTypeError.
	ErrUnknownEventType = errors.New("eventsource: unknown event type")
	// ErrDuplicateEvent: an event ID is already stored at another place, or
	// a retried append matches what is stored only in part.
	ErrDuplicateEvent = errors.New("eventsource: duplicate event id")
	// ErrDuplicateType: two Go types claim one event type name in Bind.
	ErrDuplicateType = errors.New("eventsource: duplicate event type")
	// ErrInvalidStreamID: a stream ID is empty, too long, not valid UTF-8 or
	// holds a NUL byte.
	ErrInvalidStreamID = errors.New("eventsource: invalid stream id")
	// ErrInvalidEvent: an event or record is malformed (no type name,
	// versions out of sequence, events of two aggregates in one Save, bad
	// metadata, nil event).
	ErrInvalidEvent = errors.New("eventsource: invalid event")
	// ErrInvalidCommand: a command passed to Apply is nil or names no
	// aggregate.
	ErrInvalidCommand = errors.New("eventsource: invalid command")
	// ErrInvalidReservation: a Reserver call's scope, value or owner is
	// empty, too long, or not UTF-8 without NUL.
	ErrInvalidReservation = errors.New("eventsource: invalid reservation")
	// ErrTooLarge: a payload or batch is larger than the store accepts.
	ErrTooLarge = errors.New("eventsource: too large")
	// ErrCorruptData: stored bytes could not be decoded. Returned as a
	// *DecodeError.
	ErrCorruptData = errors.New("eventsource: corrupt data")
	// ErrNoCommandHandler: Apply was called on a repository whose aggregate
	// does not implement CommandHandler.
	ErrNoCommandHandler = errors.New("eventsource: aggregate is not a command handler")
	// ErrInvalidConfig: a repository or store was built with bad options.
	ErrInvalidConfig = errors.New("eventsource: invalid configuration")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("eventsource: store closed")
	// ErrShredded: the key that encrypted an event's data was deleted
	// (crypto-shredding), so the data can never be read again. Package
	// encryption returns it as an *encryption.ShreddedError naming the
	// subject. It is not ErrCorruptData: the bytes are intact, the key is
	// gone on purpose.
	ErrShredded = errors.New("eventsource: data shredded")
	// ErrInvalidStreamMetadata: stream metadata with a negative rule, or
	// values that are empty-keyed, not UTF-8 without NUL, or too large.
	ErrInvalidStreamMetadata = errors.New("eventsource: invalid stream metadata")
	// ErrReserved: a unique value is reserved by another owner. Returned as
	// a *ReservedError.
	ErrReserved = errors.New("eventsource: value reserved by another owner")
	// ErrInlineProjection: an inline projection failed inside an append's
	// transaction, so the append stored nothing. Returned as an
	// *InlineProjectionError.
	ErrInlineProjection = errors.New("eventsource: inline projection failed")
)

// InlineProjectionError reports an inline projection that failed inside an
// append's transaction: the append was rolled back and stored nothing. It
// matches ErrInlineProjection and the projection's own error.
type InlineProjectionError struct {
	Projection string
	Stream     string
	Err        error
}

func (e *InlineProjectionError) Error() string {
	return fmt.Sprintf("eventsource: inline projection %q failed on an append to %q (nothing stored): %v", e.Projection, e.Stream, e.Err)
}

// Unwrap returns ErrInlineProjection and the projection's error.
func (e *InlineProjectionError) Unwrap() []error { return []error{ErrInlineProjection, e.Err} }

// ReservedError reports a unique value held by another owner. It matches
// ErrReserved.
type ReservedError struct {
	Scope, Value, Owner string
}

func (e *ReservedError) Error() string {
	return fmt.Sprintf("eventsource: %s %q is reserved by %q", e.Scope, e.Value, e.Owner)
}

// Unwrap makes errors.Is(err, ErrReserved) true.
func (e *ReservedError) Unwrap() error { return ErrReserved }

// ConcurrencyError reports an append whose expected version did not match.
// It matches ErrConcurrency.
type ConcurrencyError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   int64 // the stream's version when the append was refused
	// Metadata is set when the versions are the stream's metadata version
	// (StreamLifecycle.SetStreamMetadata).
	Metadata bool
}

func (e *ConcurrencyError) Error() string {
	if e.Metadata {
		return fmt.Sprintf("eventsource: concurrency conflict on the metadata of stream %q: expected metadata version %s, actual %d",
			e.Stream, e.Expected, e.Actual)
	}
	return fmt.Sprintf("eventsource: concurrency conflict on stream %q: expected version %s, actual %d",
		e.Stream, e.Expected, e.Actual)
}

// Unwrap makes errors.Is(err, ErrConcurrency) true.
func (e *ConcurrencyError) Unwrap() error { return ErrConcurrency }

// UnknownEventTypeError names a type that no Bind registered. It matches
// ErrUnknownEventType.
type UnknownEventTypeError struct {
	Type  string
	Codec string // set when the type is known but the codec is not
}

func (e *UnknownEventTypeError) Error() string {
	if e.Codec != "" {
		return fmt.Sprintf("eventsource: unknown codec %q for event type %q (add it with Registry.AddCodec)", e.Codec, e.Type)
	}
	return fmt.Sprintf("eventsource: unknown event type %q (bind its Go type with Repository.Bind or Registry.Bind)", e.Type)
}

// Unwrap makes errors.Is(err, ErrUnknownEventType) true.
func (e *UnknownEventTypeError) Unwrap() error { return ErrUnknownEventType }

// DecodeError reports a record whose bytes could not be decoded. It matches
// ErrCorruptData and the codec's own error.
type DecodeError struct {
	Stream  string
	Version int64
	Type    string
	Err     error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("eventsource: decode %s event at %q version %d: %v", e.Type, e.Stream, e.Version, e.Err)
}

// Unwrap returns ErrCorruptData and the codec's error.
func (e *DecodeError) Unwrap() []error { return []error{ErrCorruptData, e.Err} }

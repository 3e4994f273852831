package storekit

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/eventsource-go/eventsource"
)

// ValidateAppend checks an append's arguments the way every store must,
// against the store's limits (normalized, see Limits.Normalize), and fills
// in missing event IDs in place. Errors wrap eventsource.ErrInvalidStreamID,
// eventsource.ErrInvalidEvent, eventsource.ErrNoEventsProduced, eventsource.ErrDuplicateEvent or eventsource.ErrTooLarge; an
// identifier over its length matches both eventsource.ErrTooLarge and
// eventsource.ErrInvalidStreamID or eventsource.ErrInvalidEvent.
func ValidateAppend(stream string, expected eventsource.ExpectedVersion, records []eventsource.Record, limits eventsource.Limits) error {
	l := limits.Normalize()
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return err
	}
	if len(stream) > l.MaxStreamIDLength {
		return fmt.Errorf("%w: %w: %d bytes, at most %d", eventsource.ErrInvalidStreamID, eventsource.ErrTooLarge, len(stream), l.MaxStreamIDLength)
	}
	if expected < eventsource.StreamExists {
		return fmt.Errorf("%w: expected version %d", eventsource.ErrInvalidEvent, int64(expected))
	}
	if len(records) == 0 {
		return fmt.Errorf("%w: stream %q: no records to append", eventsource.ErrNoEventsProduced, stream)
	}
	if len(records) > l.MaxRecordsPerAppend {
		return fmt.Errorf("%w: stream %q: %d records in one append, at most %d", eventsource.ErrTooLarge, stream, len(records), l.MaxRecordsPerAppend)
	}
	name := func(i int, what, s string, most int) error {
		switch {
		case len(s) > most:
			return fmt.Errorf("%w: %w: record %d of stream %q: %s of %d bytes, at most %d", eventsource.ErrInvalidEvent, eventsource.ErrTooLarge, i, stream, what, len(s), most)
		case !validText(s):
			return fmt.Errorf("%w: record %d of stream %q: %s must be UTF-8 without NUL", eventsource.ErrInvalidEvent, i, stream, what)
		}
		return nil
	}
	for i := range records {
		r := &records[i]
		if r.StreamID != "" && r.StreamID != stream {
			return fmt.Errorf("%w: record %d names stream %q, appending to %q", eventsource.ErrInvalidEvent, i, r.StreamID, stream)
		}
		if r.Type == "" {
			return fmt.Errorf("%w: record %d of stream %q: no type name", eventsource.ErrInvalidEvent, i, stream)
		}
		if err := name(i, "type name", r.Type, l.MaxTypeLength); err != nil {
			return err
		}
		if err := name(i, "codec name", r.Codec, l.MaxTypeLength); err != nil {
			return err
		}
		if err := name(i, "event ID", r.EventID, l.MaxEventIDLength); err != nil {
			return err
		}
		if len(r.Data) > l.MaxDataBytes {
			return fmt.Errorf("%w: record %d of stream %q: %d bytes of data, at most %d", eventsource.ErrTooLarge, i, stream, len(r.Data), l.MaxDataBytes)
		}
		if len(r.Metadata) > l.MaxMetadataKeys {
			return fmt.Errorf("%w: record %d of stream %q: %d metadata keys, at most %d", eventsource.ErrTooLarge, i, stream, len(r.Metadata), l.MaxMetadataKeys)
		}
		size := 0
		for k, v := range r.Metadata {
			if k == "" {
				return fmt.Errorf("%w: record %d of stream %q: empty metadata key", eventsource.ErrInvalidEvent, i, stream)
			}
			if err := name(i, "metadata key", k, l.MaxMetadataKeyLength); err != nil {
				return err
			}
			if !validText(v) {
				return fmt.Errorf("%w: record %d of stream %q: metadata value of %q must be UTF-8 without NUL", eventsource.ErrInvalidEvent, i, stream, k)
			}
			size += len(k) + len(v)
		}
		if size > l.MaxMetadataBytes {
			return fmt.Errorf("%w: record %d of stream %q: %d bytes of metadata, at most %d", eventsource.ErrTooLarge, i, stream, size, l.MaxMetadataBytes)
		}
		if r.EventID == "" {
			r.EventID = eventsource.NewEventID()
		}
	}
	if n := eventsource.AppendSize(records); n > l.MaxAppendBytes {
		return fmt.Errorf("%w: stream %q: an append of %d records counts %d bytes, at most %d", eventsource.ErrTooLarge, stream, len(records), n, l.MaxAppendBytes)
	}
	if len(records) > 1 {
		seen := make(map[string]struct{}, len(records))
		for i := range records {
			if _, dup := seen[records[i].EventID]; dup {
				return fmt.Errorf("%w: %q appears twice in one append", eventsource.ErrDuplicateEvent, records[i].EventID)
			}
			seen[records[i].EventID] = struct{}{}
		}
	}
	return nil
}

// ValidateReservation checks the arguments of a Reserver call the way every
// store must: scope, value and owner are 1..255 bytes of UTF-8 without NUL
// (owner may be empty only where the call takes none). Errors wrap
// eventsource.ErrInvalidReservation.
func ValidateReservation(scope, value, owner string, needOwner bool) error {
	check := func(what, s string, required bool) error {
		if s == "" && !required {
			return nil
		}
		if s == "" || len(s) > eventsource.MaxStreamIDLength || !validText(s) {
			return fmt.Errorf("%w: %s must be 1..%d bytes of UTF-8 without NUL", eventsource.ErrInvalidReservation, what, eventsource.MaxStreamIDLength)
		}
		return nil
	}
	if err := check("scope", scope, true); err != nil {
		return err
	}
	if err := check("value", value, true); err != nil {
		return err
	}
	return check("owner", owner, needOwner)
}

func validText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// ValidateSnapshot checks a snapshot the way every SnapshotStore must: a
// valid stream ID, a version and a schema of at least 1, and data no larger
// than one append may be (limits.MaxAppendBytes). Errors wrap
// eventsource.ErrInvalidStreamID, ErrInvalidEvent or ErrTooLarge.
func ValidateSnapshot(s eventsource.Snapshot, limits eventsource.Limits) error {
	l := limits.Normalize()
	if err := eventsource.ValidateStreamID(s.StreamID); err != nil {
		return err
	}
	switch {
	case s.Version < 1:
		return fmt.Errorf("%w: snapshot of %q at version %d", eventsource.ErrInvalidEvent, s.StreamID, s.Version)
	case s.Schema < 1:
		return fmt.Errorf("%w: snapshot of %q with schema %d", eventsource.ErrInvalidEvent, s.StreamID, s.Schema)
	case len(s.Data) > l.MaxAppendBytes:
		return fmt.Errorf("%w: snapshot of %q: %d bytes, at most %d", eventsource.ErrTooLarge, s.StreamID, len(s.Data), l.MaxAppendBytes)
	}
	return nil
}

// NoSnapshot is a SnapshotStore's error for a stream without a snapshot at
// or below atMost: it wraps eventsource.ErrNotFound.
func NoSnapshot(stream string, atMost int64) error {
	return fmt.Errorf("%w: no snapshot of %q at or below version %d", eventsource.ErrNotFound, stream, atMost)
}

package eventsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Schema evolution. Every event type has a schema version: the one its Go
// type declares (SchemaVersioner), or else one more than its last upcaster
// step, or else 1. A
// Registry records the version in each record it writes, as a parameter of
// the codec name ("json;v=3"; a record without one, as every record written
// before, is version 1), and on every read that decodes (Load, History
// decoding, queries, projections, DecodeRecord) runs the steps from the
// record's version to the current one on the stored form: the plaintext in
// the record's codec (for JSON, the document), after decryption. The old Go
// types need not exist.

// Upcaster turns the stored form of an event of eventType at one schema
// version into the next. It returns the type name the record has from then
// on: eventType itself, a new name (a rename), or one of several chosen by
// the data (a split). data is nil for a record whose subject was shredded
// and is read with redaction: return the type it should be read as, and nil.
type Upcaster func(eventType string, data []byte) (newType string, newData []byte, err error)

// JSONUpcaster is an Upcaster that edits a JSON document in place and keeps
// the type name. (Numbers decode as json.Number, so none loses precision.)
// The aggregate ID ("ID", of eventsource.Model) is kept as it was, whatever
// edit does.
func JSONUpcaster(edit func(doc map[string]any) error) Upcaster {
	return func(eventType string, data []byte) (string, []byte, error) {
		if data == nil {
			return eventType, nil, nil
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.UseNumber()
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			return "", nil, fmt.Errorf("not a JSON object: %w", err)
		}
		if doc == nil {
			doc = map[string]any{}
		}
		id, hasID := doc["ID"]
		if err := edit(doc); err != nil {
			return "", nil, err
		}
		// An upcaster never changes the aggregate an event belongs to (its
		// version and time are the record's, not in the document).
		if hasID {
			doc["ID"] = id
		}
		out, err := json.Marshal(doc)
		return eventType, out, err
	}
}

// TypedUpcaster is an Upcaster for codecs whose stored form is not a
// document one can edit, such as gob: it decodes the data with codec into
// the old Go type From, calls step, and encodes what step returns (a value
// of the next version's shape, often the event's current Go type) with the
// same codec. The old type must still exist, unlike with JSONUpcaster.
// step returns the type name the record has from then on ("" keeps it).
func TypedUpcaster[From any](codec Codec, step func(old *From) (newType string, next any, err error)) Upcaster {
	return func(eventType string, data []byte) (string, []byte, error) {
		if data == nil { // a shredded record read with redaction
			return eventType, nil, nil
		}
		old := new(From)
		if err := codec.Unmarshal(data, old); err != nil {
			return "", nil, fmt.Errorf("decode %T: %w", old, err)
		}
		to, next, err := step(old)
		if err != nil {
			return "", nil, err
		}
		if to == "" {
			to = eventType
		}
		out, err := codec.Marshal(next)
		return to, out, err
	}
}

// Rename is an Upcaster that gives the record a new type name and keeps its
// data as it is.
func Rename(to string) Upcaster {
	return func(_ string, data []byte) (string, []byte, error) { return to, data, nil }
}

// SchemaVersioner is an event type that declares its schema version. Declare
// it on every type that has upcasters: then a record too old for the steps
// registered is an error rather than a struct with zero fields.
type SchemaVersioner interface {
	SchemaVersion() int
}

// OpenCodec is a codec whose stored bytes wrap another codec's, as the
// encrypting codec of package encryption does: Open returns the plaintext
// and the codec that reads it, so that upcasters work on the plaintext. A
// nil plaintext with a nil error means there is nothing to read (a shredded
// subject, with redaction): the event decodes as its zero value.
type OpenCodec interface {
	Open(ctx context.Context, data []byte) (plain []byte, inner Codec, err error)
}

// ErrSchema: a record's schema version cannot be brought to the one the
// code reads (see *SchemaError).
var ErrSchema = errors.New("eventsource: schema version")

// SchemaError reports a record that could not be upcast: a step from its
// version is missing, a step failed, or the record is newer than the code
// (Version > Current). It matches ErrSchema and the step's error.
type SchemaError struct {
	Type     string // the stored type name
	Stream   string
	Version  int64  // the record's version in its stream
	Position uint64 // its position in the global log
	Schema   int    // the record's schema version where upcasting stopped
	Current  int    // the version the code reads
	Err      error  // the failed step's error, if one failed
}

func (e *SchemaError) Error() string {
	at := fmt.Sprintf("%s event at %q version %d (position %d)", e.Type, e.Stream, e.Version, e.Position)
	switch {
	case e.Err != nil:
		return fmt.Sprintf("eventsource: upcast %s from schema version %d: %v", at, e.Schema, e.Err)
	case e.Schema > e.Current:
		return fmt.Sprintf("eventsource: %s has schema version %d, newer than the %d this code reads", at, e.Schema, e.Current)
	}
	return fmt.Sprintf("eventsource: %s has schema version %d and no upcaster from it (the code reads version %d; register one with Registry.Upcast)", at, e.Schema, e.Current)
}

// Unwrap returns ErrSchema and the step's error.
func (e *SchemaError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrSchema, e.Err}
	}
	return []error{ErrSchema}
}

// SchemaVersion returns the schema version rec was written with (1 when its
// codec name carries none).
func SchemaVersion(rec Record) int {
	_, v := splitCodec(rec.Codec)
	return v
}

// splitCodec parses "name;v=N" into the codec name and N (1 when absent or
// unreadable).
func splitCodec(s string) (string, int) {
	name, param, ok := strings.Cut(s, ";v=")
	if !ok {
		return s, 1
	}
	v, err := strconv.Atoi(param)
	if err != nil || v < 1 {
		return s, 1
	}
	return name, v
}

// codecWithVersion is the codec name a record of schema version v carries.
func codecWithVersion(name string, v int) string {
	if v <= 1 {
		return name
	}
	return name + ";v=" + strconv.Itoa(v)
}

type upcastKey struct {
	typ  string
	from int
}

// Upcast registers the step that reads eventType records of schema version
// from as version from+1 (possibly under another type name, see Upcaster).
// Steps of a type start at 1 and follow each other; its current version is
// one more than its last. A second step for the same version is
// ErrInvalidConfig.
//
// into names the types the step may give records besides eventType (for a
// split, each of them); StoredNames follows them, so that a type filter can
// include every old name. RenameType registers a rename.
func (r *Registry) Upcast(eventType string, from int, step Upcaster, into ...string) error {
	if eventType == "" || from < 1 || step == nil {
		return fmt.Errorf("%w: Upcast needs a type name, a version ≥ 1 and a step", ErrInvalidConfig)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.steps == nil {
		r.steps = map[upcastKey]Upcaster{}
		r.current = map[string]int{}
	}
	k := upcastKey{eventType, from}
	if _, dup := r.steps[k]; dup {
		return fmt.Errorf("%w: a step of %q from version %d is registered already", ErrInvalidConfig, eventType, from)
	}
	if from > 1 {
		if _, ok := r.steps[upcastKey{eventType, from - 1}]; !ok && !r.reachedBy(from) {
			return fmt.Errorf("%w: a step of %q from version %d, but none from %d", ErrInvalidConfig, eventType, from, from-1)
		}
	}
	r.steps[k] = step
	r.current[eventType] = max(r.current[eventType], from+1)
	for _, to := range into {
		if to != eventType && to != "" {
			if r.feeds == nil {
				r.feeds = map[string][]string{}
			}
			r.feeds[to] = append(r.feeds[to], eventType)
		}
	}
	return nil
}

// RenameType registers the step that reads records stored as oldType at
// schema version from as newType at version from+1 (Upcast with Rename).
func (r *Registry) RenameType(oldType string, from int, newType string) error {
	return r.Upcast(oldType, from, Rename(newType), newType)
}

// StoredNames returns types and every stored type name that upcasts into
// one of them (through RenameType, or Upcast's into), sorted: the Types of
// an eventsource.Filter that must not miss old records of these types. A
// subscription or projection that decodes with the registry filters by it.
func (r *Registry) StoredNames(types ...string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	seen := map[string]bool{}
	var walk func(string)
	walk = func(t string) {
		if seen[t] {
			return
		}
		seen[t] = true
		for _, old := range r.feeds[t] {
			walk(old)
		}
	}
	for _, t := range types {
		walk(t)
	}
	return slices.Sorted(maps.Keys(seen))
}

// reachedBy reports whether a registered step leads to version v (a rename
// from another type lands its records at v).
func (r *Registry) reachedBy(v int) bool {
	for k := range r.steps {
		if k.from == v-1 {
			return true
		}
	}
	return false
}

// currentVersion is eventType's schema version; r.mu is held.
func (r *Registry) currentVersion(eventType string) int {
	if v, ok := r.current[eventType]; ok {
		return v
	}
	return 1
}

// upcast runs the steps from rec's schema version; it returns the type and
// plaintext to decode, the codec that reads it, and whether the record is
// redacted (nothing to decode).
func (r *Registry) upcast(ctx context.Context, rec Record, c Codec, schema int) (string, []byte, Codec, bool, error) {
	typ, data := rec.Type, rec.Data
	redacted := false
	fail := func(err error) (string, []byte, Codec, bool, error) {
		r.mu.RLock()
		cur := r.currentVersion(typ)
		r.mu.RUnlock()
		return "", nil, nil, false, &SchemaError{Type: rec.Type, Stream: rec.StreamID, Version: rec.Version, Position: rec.Position, Schema: schema, Current: cur, Err: err}
	}
	if oc, ok := c.(OpenCodec); ok {
		plain, inner, err := oc.Open(ctx, data)
		if err != nil {
			return "", nil, nil, false, err
		}
		data, c, redacted = plain, inner, plain == nil
	}
	for {
		r.mu.RLock()
		step, ok := r.steps[upcastKey{typ, schema}]
		r.mu.RUnlock()
		if !ok {
			break
		}
		next, out, err := step(typ, data)
		if err == nil && next == "" {
			err = errors.New("the step returned no type name")
		}
		if err != nil {
			return fail(err)
		}
		typ, data, schema = next, out, schema+1
		if redacted {
			data = nil
		}
	}
	r.mu.RLock()
	cur := r.currentVersion(typ)
	r.mu.RUnlock()
	if schema != cur {
		return "", nil, nil, false, &SchemaError{Type: rec.Type, Stream: rec.StreamID, Version: rec.Version, Position: rec.Position, Schema: schema, Current: cur}
	}
	return typ, data, c, redacted, nil
}

// Package jsonmap decodes the JSON objects of string values that stores keep
// record metadata in. Reading the global log decodes one per record, so the
// common case (no escapes) takes a fast path; anything else is handed to
// encoding/json, whose result it always equals.
package jsonmap

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/eventsource-go/eventsource"
)

// Decode parses a JSON object whose values are all strings. Empty input and
// "null" decode to nil.
func Decode(b []byte) (map[string]string, error) {
	if m, ok := fast(b); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeMetadata sets r.Metadata from a stored metadata column (JSON text;
// empty for none). Bytes that are not a flat JSON object of strings are
// eventsource.ErrCorruptData, naming the record.
func DecodeMetadata(r *eventsource.Record, text []byte) error {
	if len(text) == 0 {
		return nil
	}
	m, err := Decode(text)
	if err != nil {
		return fmt.Errorf("%w: metadata of %q version %d: %w", eventsource.ErrCorruptData, r.StreamID, r.Version, err)
	}
	r.Metadata = m
	return nil
}

func space(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// fast parses objects without escapes or control characters; ok is false
// for anything it does not handle, valid or not.
func fast(b []byte) (map[string]string, bool) {
	i := 0
	skip := func() {
		for i < len(b) && space(b[i]) {
			i++
		}
	}
	str := func() (string, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		start := i + 1
		for j := start; j < len(b); j++ {
			switch c := b[j]; {
			case c == '"':
				i = j + 1
				s := b[start:j]
				if !utf8.Valid(s) {
					return "", false
				}
				return string(s), true
			case c == '\\' || c < 0x20:
				return "", false
			}
		}
		return "", false
	}
	if len(b) == 0 {
		return nil, true
	}
	skip()
	if i == len(b) {
		return nil, false
	}
	if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
		i += 4
		skip()
		return nil, i == len(b)
	}
	if b[i] != '{' {
		return nil, false
	}
	i++
	m := make(map[string]string, 4)
	skip()
	if i < len(b) && b[i] == '}' {
		i++
		skip()
		return m, i == len(b)
	}
	for {
		skip()
		k, ok := str()
		if !ok {
			return nil, false
		}
		skip()
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i++
		skip()
		v, ok := str()
		if !ok {
			return nil, false
		}
		m[k] = v
		skip()
		if i >= len(b) {
			return nil, false
		}
		if b[i] == ',' {
			i++
			continue
		}
		if b[i] != '}' {
			return nil, false
		}
		i++
		skip()
		return m, i == len(b)
	}
}

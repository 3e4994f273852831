// Package jsoncodec is the JSON codec for eventsource: the default, human
// readable, and tolerant of added and removed fields.
//
//	reg := eventsource.NewRegistry(jsoncodec.New(jsoncodec.DisallowUnknownFields()))
package jsoncodec

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Name is the codec name stored with each record this codec writes.
const Name = "json"

// Codec encodes with encoding/json.
type Codec struct {
	strict    bool
	useNumber bool
}

// Option configures a Codec.
type Option func(*Codec)

// DisallowUnknownFields makes decoding fail on fields the Go type lacks,
// except the "Version" and "At" that payloads written before Model's
// Version and At became the record's envelope carry at their top level.
func DisallowUnknownFields() Option { return func(c *Codec) { c.strict = true } }

// UseNumber decodes numbers into interface{} fields as json.Number.
func UseNumber() Option { return func(c *Codec) { c.useNumber = true } }

// New returns a JSON codec.
func New(opts ...Option) *Codec {
	c := &Codec{}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Name implements eventsource.Codec.
func (c *Codec) Name() string { return Name }

// Marshal implements eventsource.Codec.
func (c *Codec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements eventsource.Codec.
func (c *Codec) Unmarshal(data []byte, v any) error {
	if !c.strict && !c.useNumber {
		return json.Unmarshal(data, v)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if c.strict {
		d.DisallowUnknownFields()
	}
	if c.useNumber {
		d.UseNumber()
	}
	if err := d.Decode(v); err != nil {
		if c.strict && isEnvelopeField(err) {
			if lean, ok := withoutEnvelope(data); ok {
				return c.Unmarshal(lean, v)
			}
		}
		return err
	}
	if d.More() {
		return &json.SyntaxError{Offset: d.InputOffset()}
	}
	return nil
}

// isEnvelopeField reports the strict decoder's refusal of a top-level
// "Version" or "At", as older payloads of types embedding
// eventsource.Model hold.
func isEnvelopeField(err error) bool {
	msg := err.Error()
	return strings.HasSuffix(msg, `unknown field "Version"`) || strings.HasSuffix(msg, `unknown field "At"`)
}

// withoutEnvelope returns data without its top-level "Version" and "At".
func withoutEnvelope(data []byte) ([]byte, bool) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, false
	}
	_, v := doc["Version"]
	_, a := doc["At"]
	if !v && !a {
		return nil, false
	}
	delete(doc, "Version")
	delete(doc, "At")
	out, err := json.Marshal(doc)
	return out, err == nil
}

// Package gobcodec is the gob codec for eventsource: compact and fast for
// Go-only systems, but readable only from Go.
//
//	reg := eventsource.NewRegistry(gobcodec.New())
//
// Each record is encoded with its own gob encoder, so it carries its type
// description and decodes on its own, whatever was read before it.
package gobcodec

import (
	"bytes"
	"encoding/gob"
)

// Name is the codec name stored with each record this codec writes.
const Name = "gob"

// Codec encodes with encoding/gob.
type Codec struct{}

// New returns a gob codec.
func New() *Codec { return &Codec{} }

// Name implements eventsource.Codec.
func (*Codec) Name() string { return Name }

// Marshal implements eventsource.Codec.
func (*Codec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Unmarshal implements eventsource.Codec.
func (*Codec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

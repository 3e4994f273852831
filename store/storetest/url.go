package storetest

import (
	"context"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storeurl"
)

// OpenURL checks that storeurl.Open opens a store that rawURL names (its
// package registered the scheme), which keeps what it is given: it appends
// to a new stream, reads it back and closes the store.
func OpenURL(t *testing.T, rawURL string, opts ...storeurl.Option) {
	t.Helper()
	ctx := context.Background()
	s, err := storeurl.Open(ctx, rawURL, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", storeurl.Redact(rawURL), err)
	}
	defer s.Close()
	stream := "storeurl-" + eventsource.NewEventID()
	if _, err := s.Append(ctx, stream, eventsource.NoStream, []eventsource.Record{{Type: "T", Data: []byte("{}")}}); err != nil {
		t.Fatalf("%s: append: %v", storeurl.Redact(rawURL), err)
	}
	h, err := eventsource.ReadStreamAll(ctx, s, stream)
	if err != nil || len(h) != 1 {
		t.Fatalf("%s: read %d records, %v", storeurl.Redact(rawURL), len(h), err)
	}
}

package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/transfer"
)

// FuzzImport feeds arbitrary input to Import: it never panics, fails only
// with an *ImportError, and what it imported exports and imports again
// unchanged.
//
//	go test -run '^$' -fuzz FuzzImport -fuzztime 30s ./transfer/
func FuzzImport(f *testing.F) {
	f.Add([]byte(`{"event_id":"e1","stream":"s-1","version":1,"type":"T","codec":"json","data":{"a":1}}` + "\n"))
	f.Add([]byte(`{"event_id":"e1","stream":"s-1","version":1,"type":"T","data_base64":"AP8="}` + "\n" + `{"event_id":"e2","stream":"s-1","version":2,"type":"U","metadata":{"k":"v"}}`))
	f.Add([]byte(`{"event_id":"e1","stream":"s-1","version":2,"type":"T"}`))
	f.Add([]byte("not json"))
	f.Add([]byte(`{"stream":"","version":-1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx := context.Background()
		s := memory.New()
		n, err := transfer.Import(ctx, s, bytes.NewReader(in), nil)
		var ie *transfer.ImportError
		if err != nil && !errors.As(err, &ie) {
			t.Fatalf("Import = %d, %v: not an *ImportError", n, err)
		}
		var out bytes.Buffer
		if _, err := transfer.Export(ctx, s, &out, transfer.Selection{}, nil); err != nil {
			t.Fatal(err)
		}
		before := out.String()
		if _, err := transfer.Import(ctx, s, strings.NewReader(before), nil); err != nil {
			t.Fatalf("importing the store's own export again: %v", err)
		}
		var again bytes.Buffer
		if _, err := transfer.Export(ctx, s, &again, transfer.Selection{}, nil); err != nil {
			t.Fatal(err)
		}
		if again.String() != before {
			t.Fatal("importing the store's own export changed it")
		}
	})
}

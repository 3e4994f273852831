package projection_test

import (
	"errors"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

// FuzzUnmarshalProgress decodes arbitrary bytes as a checkpoint's progress
// column: never a panic, an error only as eventsource.ErrCorruptData, and
// what decodes encodes and decodes again to the same.
//
//	go test -run '^$' -fuzz FuzzUnmarshalProgress -fuzztime 30s ./projection/
func FuzzUnmarshalProgress(f *testing.F) {
	seed, _ := projection.MarshalProgress(projection.Checkpoint{Name: "p", Position: 9,
		Done: []projection.Range{{From: 11, To: 12}}, Digests: []projection.Digest{{From: 1, To: 10, Count: 9, Sum: 77}},
		DigestsFrom: 1, DigestRange: 10, Parked: []projection.ParkedEvent{{Position: 10, Stream: "s-1", Key: "s-1", Error: "boom"}}, Version: 2})
	f.Add(seed)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"done":[{"f":5,"t":1}]}`))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var cp projection.Checkpoint
		cp.Name = "p"
		if err := projection.UnmarshalProgress(b, &cp); err != nil {
			if !errors.Is(err, eventsource.ErrCorruptData) {
				t.Fatalf("error %v is not ErrCorruptData", err)
			}
			return
		}
		again, err := projection.MarshalProgress(cp)
		if err != nil {
			t.Fatal(err)
		}
		var cp2 projection.Checkpoint
		if err := projection.UnmarshalProgress(again, &cp2); err != nil {
			t.Fatalf("its own encoding does not decode: %v", err)
		}
		third, _ := projection.MarshalProgress(cp2)
		if string(third) != string(again) {
			t.Fatalf("encode, decode, encode differ:\n%s\n%s", again, third)
		}
	})
}

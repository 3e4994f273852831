package fastjson_test

import (
	"reflect"
	"testing"

	"github.com/eventsource-go/eventsource/codec/fastjson"
	"github.com/eventsource-go/eventsource/codec/jsoncodec"
)

// FuzzSameAsStd: whatever encoding/json reads into an event, fastjson reads
// to the same value; whatever encoding/json refuses, fastjson refuses.
func FuzzSameAsStd(f *testing.F) {
	for _, s := range []string{
		`{"ID":"c","Name":"x","Price":1.5,"Tags":["a"],"Attrs":{"k":"v"},"Blob":"AAEC","When":"2026-12-04T01:02:03Z","note":"n"}`,
		`{"Name":"\u003cb\u003e \ud83d\ude00 \\ \/"}`, `{"Price":1e400}`, `{"Name":null}`, `{}`, `[]`, `{"Name":"a","Name":"b"}`,
		`{"name":"case"}`, `{"Blob":"not base64!"}`, `{"When":"yesterday"}`, "{\"Name\":\"\xff\"}", `{"Tags":[1]}`,
	} {
		f.Add([]byte(s))
	}
	std, fast := jsoncodec.New(), fastjson.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b ItemAdded
		errA := std.Unmarshal(data, &a)
		errB := fast.Unmarshal(data, &b)
		switch {
		case errA == nil && errB != nil:
			t.Fatalf("encoding/json reads %q, fastjson refuses it: %v", data, errB)
		case errA != nil && errB == nil:
			t.Fatalf("encoding/json refuses %q (%v), fastjson reads it as %+v", data, errA, b)
		case errA == nil && !reflect.DeepEqual(a, b):
			t.Fatalf("%q reads as %+v with encoding/json, %+v with fastjson", data, a, b)
		}
	})
}

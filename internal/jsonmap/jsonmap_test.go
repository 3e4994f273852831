package jsonmap

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
)

var cases = []string{
	``, `null`, `{}`, ` { } `, `{"a":"b"}`, `{"a": "b", "c": "d"}`, `{"a":"b","a":"c"}`,
	`{"ü":"✓"}`, `{"q":"say \"hi\""}`, `{"n":"\u00e9"}`, `{"a":1}`, `{"a":"b"`, `{"a":"b",}`,
	`[]`, `{"a":"b"} x`, `{"a":null}`, "{\"a\":\"\xff\"}", `{"":""}`, `nul`, `{"a":"b"}}`,
}

func check(t *testing.T, in string) {
	got, err := Decode([]byte(in))
	var want map[string]string
	wantErr := json.Unmarshal([]byte(in), &want)
	if in == "" {
		wantErr, want = nil, nil // stores keep no metadata as empty
	}
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Decode(%q) error %v, encoding/json %v", in, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%q) = %#v, encoding/json %#v", in, got, want)
	}
}

func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range cases {
		check(t, c)
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range cases {
		f.Add(c)
	}
	f.Fuzz(check)
}

func BenchmarkDecode(b *testing.B) {
	in := []byte(`{"correlation_id":"5f1c2a34-8f0e-4c43-9a59-1a2b3c4d5e6f","tenant":"acme","user":"ann"}`)
	b.Run("jsonmap", func(b *testing.B) {
		for b.Loop() {
			Decode(in)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var m map[string]string
			json.Unmarshal(in, &m)
		}
	})
}

func TestDecodeMetadata(t *testing.T) {
	r := eventsource.Record{StreamID: "s", Version: 3}
	if err := DecodeMetadata(&r, nil); err != nil || r.Metadata != nil {
		t.Fatalf("no metadata: %v, %v", r.Metadata, err)
	}
	if err := DecodeMetadata(&r, []byte(`{"k":"v"}`)); err != nil || r.Metadata["k"] != "v" {
		t.Fatalf("metadata: %v, %v", r.Metadata, err)
	}
	err := DecodeMetadata(&r, []byte(`{"k":1}`))
	if !errors.Is(err, eventsource.ErrCorruptData) || !strings.Contains(err.Error(), `"s" version 3`) {
		t.Fatalf("corrupt metadata: %v, want ErrCorruptData naming the record", err)
	}
}

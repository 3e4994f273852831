package jsoncodec_test

import (
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/jsoncodec"
)

type renamed struct {
	eventsource.Model
	Name string
}

// The strict codec reads payloads written before Model's Version and At
// left the payload, and still refuses any other unknown field.
func TestStrictReadsOlderPayloads(t *testing.T) {
	c := jsoncodec.New(jsoncodec.DisallowUnknownFields())
	var e renamed
	old := `{"ID":"a","Version":3,"At":"2026-01-02T03:04:05Z","Name":"x"}`
	if err := c.Unmarshal([]byte(old), &e); err != nil || e.ID != "a" || e.Name != "x" || e.Version != 0 {
		t.Fatalf("an older payload: %+v, %v", e, err)
	}
	for _, bad := range []string{`{"ID":"a","Nmae":"x"}`, `{"ID":"a","Version":3,"Nmae":"x"}`} {
		if err := c.Unmarshal([]byte(bad), &renamed{}); err == nil || !strings.Contains(err.Error(), "Nmae") {
			t.Errorf("%s: %v, want the unknown field named", bad, err)
		}
	}
	data, err := c.Marshal(&renamed{Model: eventsource.Model{ID: "a", Version: 3}, Name: "x"})
	if err != nil || string(data) != `{"ID":"a","Name":"x"}` {
		t.Fatalf("Marshal = %s, %v", data, err)
	}
}

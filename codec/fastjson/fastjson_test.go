package fastjson_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/codec/fastjson"
	"github.com/eventsource-go/eventsource/codec/jsoncodec"
	"github.com/eventsource-go/eventsource/store/memory"
)

type ItemAdded struct {
	eventsource.Model
	Name  string
	Price float64
	Tags  []string          `json:",omitempty"`
	Attrs map[string]string `json:",omitempty"`
	Blob  []byte            `json:",omitempty"`
	When  time.Time
	Note  *string `json:"note,omitempty"`
}

type Cart struct {
	Items   []string
	Version int64
}

func (c *Cart) On(e eventsource.Event) error {
	switch e := e.(type) {
	case *ItemAdded:
		c.Items = append(c.Items, e.Name)
	default:
		return fmt.Errorf("unexpected %T", e)
	}
	c.Version = e.EventVersion()
	return nil
}

// TestSameFormat: what either codec writes, the other reads to the same
// value, and both write the same bytes, for values with the awkward parts
// of JSON (HTML characters, unicode, escapes, times, bytes, maps, floats).
func TestSameFormat(t *testing.T) {
	note := "a <b> & \"c\" \u2028 é 😀"
	values := []ItemAdded{
		{Model: eventsource.Model{ID: "cart-1"}, Name: "plain"},
		{Model: eventsource.Model{ID: "c\u00e9"}, Name: "<script>alert(1)</script>", Price: 0.1 + 0.2, Tags: []string{"a", "", "\x01"},
			Attrs: map[string]string{"z": "1", "a": "2", "m": "\t"}, Blob: []byte{0, 1, 2, 255}, When: time.Date(2026, 12, 4, 1, 2, 3, 456789, time.FixedZone("x", 3600)), Note: &note},
		{Name: "big", Price: 1e21, When: time.Unix(0, 0).UTC()},
	}
	std, fast := jsoncodec.New(), fastjson.New()
	if std.Name() != fast.Name() {
		t.Fatalf("codec names %q and %q differ", std.Name(), fast.Name())
	}
	for i, v := range values {
		a, err := std.Marshal(&v)
		if err != nil {
			t.Fatal(err)
		}
		b, err := fast.Marshal(&v)
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Errorf("value %d: encoding/json writes %s, fastjson %s", i, a, b)
		}
		var fromStd, fromFast ItemAdded
		if err := fast.Unmarshal(a, &fromStd); err != nil {
			t.Fatal(err)
		}
		if err := std.Unmarshal(b, &fromFast); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fromStd, fromFast) || fromStd.Name != v.Name || !fromStd.When.Equal(v.When) {
			t.Errorf("value %d reads back as %+v and %+v", i, fromStd, fromFast)
		}
	}
	var into ItemAdded
	for _, bad := range []string{`{"Name":`, `{"Name":1}`, `[1]`, `{"Name":"a"} x`} {
		if err := fast.Unmarshal([]byte(bad), &into); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		} else if std.Unmarshal([]byte(bad), &into) == nil {
			t.Errorf("encoding/json reads %s, fastjson refuses it: %v", bad, err)
		}
	}
}

// TestRepository: a store written with the default codec loads with this
// one and the other way round.
func TestRepository(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	write := eventsource.New(&Cart{}, eventsource.WithStore(store))
	if err := write.Bind(&ItemAdded{}); err != nil {
		t.Fatal(err)
	}
	if err := write.Save(ctx, &ItemAdded{Model: eventsource.Model{ID: "c"}, Name: "one"}, &ItemAdded{Name: "two", Model: eventsource.Model{ID: "c"}}); err != nil {
		t.Fatal(err)
	}
	read := eventsource.New(&Cart{}, eventsource.WithStore(store), eventsource.WithSerializer(eventsource.NewRegistry(fastjson.New())))
	if err := read.Bind(&ItemAdded{}); err != nil {
		t.Fatal(err)
	}
	c, err := read.Load(ctx, "c")
	if err != nil || fmt.Sprint(c.Items) != "[one two]" || c.Version != 2 {
		t.Fatalf("Load with fastjson = %+v, %v", c, err)
	}
	if _, err := read.SaveExpecting(ctx, eventsource.Exact(2), &ItemAdded{Model: eventsource.Model{ID: "c"}, Name: "three"}); err != nil {
		t.Fatal(err)
	}
	if c, err := write.Load(ctx, "c"); err != nil || fmt.Sprint(c.Items) != "[one two three]" {
		t.Fatalf("Load with encoding/json = %+v, %v", c, err)
	}
	var doc map[string]any
	h, _ := eventsource.ReadStreamAll(ctx, store, "c")
	if err := json.Unmarshal(h[2].Data, &doc); err != nil || h[2].Codec != "json" {
		t.Fatalf("fastjson's record: codec %q, %v", h[2].Codec, err)
	}
}

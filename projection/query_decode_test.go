package projection_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/store/memory"
)

type noted struct {
	eventsource.Model
	Text string
}

// plainSerializer decodes JSON into *noted and nothing more: the query, not
// the serializer, must give the event its record's place.
type plainSerializer struct{}

func (plainSerializer) Bind(...eventsource.Event) error { return nil }
func (plainSerializer) MarshalEvent(e eventsource.Event) (eventsource.Record, error) {
	data, err := json.Marshal(e)
	return eventsource.Record{Type: "noted", Codec: "json", Data: data}, err
}
func (plainSerializer) UnmarshalEvent(r eventsource.Record) (eventsource.Event, error) {
	var n noted
	return &n, json.Unmarshal(r.Data, &n)
}

func TestQueryOnEventReportsTheRecordsPlace(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	// Data written with a zero version, as unchecked saves once stored it.
	for range 3 {
		if _, err := store.Append(ctx, "note-1", eventsource.Any, []eventsource.Record{{Type: "noted", Codec: "json", Data: []byte(`{"ID":"1","Version":0}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	reg := eventsource.NewRegistry(nil)
	if err := reg.Bind(&noted{}); err != nil {
		t.Fatal(err)
	}
	for name, ser := range map[string]eventsource.Serializer{"registry": reg, "plain": plainSerializer{}} {
		seen, err := projection.NewQuery(projection.FromStream(store, "note-1"), []int64(nil)).
			OnEvent(ser, func(vs []int64, e eventsource.Event) ([]int64, error) {
				if e.EventAt().IsZero() {
					t.Errorf("%s: event %d has no time", name, e.EventVersion())
				}
				return append(vs, e.EventVersion()), nil
			}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != 3 || seen[0] != 1 || seen[1] != 2 || seen[2] != 3 {
			t.Fatalf("%s: OnEvent saw versions %v, want [1 2 3]", name, seen)
		}
	}
}

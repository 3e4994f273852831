package esotel_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/esotel"
	"github.com/eventsource-go/eventsource/store/memory"
)

type Incremented struct{ eventsource.Model }

// Counter counts its increments. Its handler lets another writer append
// to its stream first, as many times as race says: a real conflict for
// the repository to retry.
type Counter struct{ N int }

type Increment struct{ eventsource.CommandModel }

func (c *Counter) On(eventsource.Event) error { c.N++; return nil }

func (c *Counter) Apply(ctx context.Context, cmd eventsource.Command) ([]eventsource.Event, error) {
	if *race > 0 {
		*race--
		if _, err := raceStore.Append(context.Background(), "counter-"+cmd.AggregateID(), eventsource.Any,
			[]eventsource.Record{{Type: "Incremented", Codec: "json", Data: []byte(`{}`)}}); err != nil {
			return nil, err
		}
	}
	return []eventsource.Event{&Incremented{}}, nil
}

var (
	race      = new(int)
	raceStore eventsource.Store
)

func TestRepositorySpansAndRetries(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	mem := memory.New()
	s, err := esotel.NewStore(mem, tel.opts...)
	if err != nil {
		t.Fatal(err)
	}
	raceStore = mem
	inner := eventsource.New(&Counter{}, eventsource.WithStore(s), eventsource.WithStreamPrefix("counter-"))
	repo, err := esotel.NewRepository(inner, tel.opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Bind(&Incremented{}); err != nil {
		t.Fatal(err)
	}
	*race = 2 // two conflicts, then the third attempt goes through
	v, err := repo.Apply(ctx, &Increment{eventsource.CommandModel{ID: "1"}})
	if err != nil || v != 3 {
		t.Fatalf("Apply = %d, %v; want version 3", v, err)
	}
	c, err := repo.Load(ctx, "1")
	if err != nil || c.N != 3 {
		t.Fatalf("Load = %+v, %v", c, err)
	}

	applies := tel.ended("repository.apply")
	if len(applies) != 1 {
		t.Fatalf("%d repository.apply spans", len(applies))
	}
	a := applies[0]
	if v, _ := attr(a.Attributes(), esotel.RetriesKey); v.AsInt64() != 2 {
		t.Errorf("apply span: %s = %d, want 2", esotel.RetriesKey, v.AsInt64())
	}
	if v, _ := attr(a.Attributes(), esotel.AggregateKey); v.AsString() != "1" {
		t.Errorf("apply span: aggregate %q", v.AsString())
	}
	var appendsUnder, conflicts int
	for _, s := range tel.ended("append counter") {
		if s.Parent().SpanID() == a.SpanContext().SpanID() {
			appendsUnder++
			if v, _ := attr(s.Attributes(), esotel.ConflictKey); v.AsBool() {
				conflicts++
			}
		}
	}
	if appendsUnder != 3 || conflicts != 2 {
		t.Errorf("under the apply span: %d appends, %d conflicts; want 3 and 2", appendsUnder, conflicts)
	}
	if len(tel.ended("repository.load")) != 1 {
		t.Errorf("%d repository.load spans, want 1", len(tel.ended("repository.load")))
	}
	ms := tel.metrics(t)
	if n := sum(t, ms, esotel.MetricRetries, attribute.String("db.system.name", "memory")); n != 2 {
		t.Errorf("%s = %d, want 2", esotel.MetricRetries, n)
	}
}

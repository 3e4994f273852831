package eventsource_test

import (
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/memory"
)

// wrapped is a decorator that implements only Store and Unwrap.
type wrapped struct{ eventsource.Store }

func (w wrapped) Unwrap() eventsource.Store { return w.Store }

// plain hides every capability of the store it holds and does not unwrap.
type plain struct{ eventsource.Store }

func TestAsLooksThroughDecorators(t *testing.T) {
	mem := memory.New()
	var s eventsource.Store = wrapped{wrapped{mem}}
	if _, ok := s.(eventsource.HeadReader); ok {
		t.Fatal("the decorator itself claims HeadReader")
	}
	h, ok := eventsource.As[eventsource.HeadReader](s)
	if !ok || h != eventsource.HeadReader(mem) {
		t.Fatalf("As[HeadReader] through two decorators = %v, %v; want the memory store", h, ok)
	}
	if _, ok := eventsource.As[eventsource.Notifier](plain{mem}); ok {
		t.Fatal("As found a capability behind a store that does not unwrap")
	}
	if _, ok := eventsource.As[eventsource.HeadReader](nil); ok {
		t.Fatal("As on nil found a capability")
	}
	if l := eventsource.LimitsOf(wrapped{mem}); l != eventsource.LimitsOf(mem) {
		t.Fatalf("LimitsOf through a decorator = %+v, want the memory store's %+v", l, eventsource.LimitsOf(mem))
	}
}

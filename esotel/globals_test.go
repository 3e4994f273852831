package esotel_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/esotel"
	"github.com/eventsource-go/eventsource/store/memory"
)

// A store decorated while the program has set no provider skips every
// check until one is set; once otel.SetTracerProvider is called, its
// appends are traced (within the watcher's 50 ms). It sets the global
// provider, which no other test of this package uses.
func TestGlobalProviderSetLater(t *testing.T) {
	ctx := context.Background()
	s, err := esotel.NewStore(memory.New())
	if err != nil {
		t.Fatal(err)
	}
	recs := []eventsource.Record{{Type: "Opened"}}
	if _, err := s.Append(ctx, "account-1", eventsource.Any, recs); err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(ctx)
	otel.SetTracerProvider(tp)
	set := time.Now()
	for len(spans.Ended()) == 0 {
		if time.Since(set) > 5*time.Second {
			t.Fatal("appends are not traced 5 s after otel.SetTracerProvider")
		}
		time.Sleep(5 * time.Millisecond)
		if _, err := s.Append(ctx, "account-1", eventsource.Any, recs); err != nil {
			t.Fatal(err)
		}
	}
	if name := spans.Ended()[0].Name(); name != "append account" {
		t.Fatalf("span %q", name)
	}
	t.Logf("traced %v after SetTracerProvider", time.Since(set).Round(time.Millisecond))
	// A store decorated now uses the provider at once.
	s2, err := esotel.NewStore(memory.New())
	if err != nil {
		t.Fatal(err)
	}
	n := len(spans.Ended())
	if _, err := s2.Append(ctx, "order-1", eventsource.Any, recs); err != nil || len(spans.Ended()) != n+1 {
		t.Fatalf("a store decorated after SetTracerProvider: %d spans after its first append, want %d (%v)", len(spans.Ended()), n+1, err)
	}
}

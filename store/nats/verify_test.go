package nats_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsource-go/eventsource"
	esnats "github.com/eventsource-go/eventsource/store/nats"
)

// WithoutAutoSetup: Open, Verify and reads create no stream, and say which
// is missing; after Setup they work.
func TestWithoutAutoSetupCreatesNothing(t *testing.T) {
	srv := startServer(t, t.TempDir())
	ctx := ctxFor(t)
	s, err := esnats.Open(ctx, srv.ClientURL(), esnats.WithStreamName("RO"), esnats.WithSubjectPrefix("ro"), esnats.WithoutAutoSetup())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Verify(ctx); !errors.Is(err, eventsource.ErrNotFound) || !strings.Contains(err.Error(), "stream RO ") {
		t.Fatalf("Verify = %v; want ErrNotFound naming stream RO", err)
	}
	if _, err := s.Head(ctx); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("Head = %v; want ErrNotFound", err)
	}
	js := connect(t, srv.ClientURL()).js
	for _, name := range []string{"RO", "RO_IDS", "RO_META"} {
		if _, err := js.Stream(ctx, name); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("stream %s after Open, Verify and Head: %v", name, err)
		}
	}
	if err := s.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("Verify after Setup = %v", err)
	}
	if _, err := s.Append(ctx, "a", eventsource.NoStream, []eventsource.Record{rec("E", "{}")}); err != nil {
		t.Fatal(err)
	}
}

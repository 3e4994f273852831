package memory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection/projectiontest"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Features{
		Notify: true, Head: true, ListStreams: true, DeleteStream: true, CommitHook: true, Reservations: true,
		Snapshots: true, Lifecycle: true, Scavenge: true,
	}, func(t *testing.T) eventsource.Store {
		s := memory.New(memory.WithBatchSize(100))
		t.Cleanup(func() { s.Close() })
		return s
	})
	t.Run("LiveSubscriber", func(t *testing.T) {
		t.Parallel()
		projectiontest.LiveSubscriber(t, memory.New(), projectiontest.SubscriptionOptions{CommitHook: true})
	})
}

// TestLimits: the default limits cover the portable ones, and
// WithMaxDataSize sets the data limit (the conformance suite tests the
// defaults).
func TestLimits(t *testing.T) {
	if l, p := memory.New().Limits(), eventsource.PortableLimits(); !l.Covers(p) {
		t.Fatalf("default limits %+v do not cover the portable %+v", l, p)
	}
	s := memory.New(memory.WithMaxDataSize(100))
	if n := s.Limits().MaxDataBytes; n != 100 {
		t.Fatalf("WithMaxDataSize(100): MaxDataBytes %d", n)
	}
	if _, err := s.Append(context.Background(), "s", eventsource.Any, []eventsource.Record{{Type: "T", Data: make([]byte, 101)}}); !errors.Is(err, eventsource.ErrTooLarge) {
		t.Fatalf("101 bytes of data: %v, want ErrTooLarge", err)
	}
}

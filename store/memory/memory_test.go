package memory_test

import (
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/memory"
	"github.com/eventsource-go/eventsource/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Features{
		Notify: true, Head: true, ListStreams: true, DeleteStream: true, CommitHook: true, Reservations: true,
		MaxDataSize: 64 << 10,
	}, func(t *testing.T) eventsource.Store {
		s := memory.New(memory.WithMaxDataSize(64<<10), memory.WithBatchSize(100))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

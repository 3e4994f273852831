package nats

import (
	"context"
	"fmt"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/nats-io/nats.go/jetstream"
)

// Notify implements eventsource.Notifier. Appends through this Store signal
// at once; appends by other processes arrive through one live ordered
// consumer (headers only, new messages only) that the Store starts on the
// first call and stops in Close.
func (s *Store) Notify(ctx context.Context) (<-chan struct{}, error) {
	h, err := s.handles(ctx)
	if err != nil {
		return nil, err
	}
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	if s.closed.Load() {
		return nil, eventsource.ErrClosed
	}
	if s.notifyStop == nil {
		cons, err := h.events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{s.eventsSubject()},
			DeliverPolicy:  jetstream.DeliverNewPolicy,
			HeadersOnly:    true,
		})
		if err != nil {
			return nil, fmt.Errorf("nats: notify: %w", err)
		}
		cc, err := cons.Consume(func(jetstream.Msg) { s.changed.Fire() },
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				s.log.Debug("nats: live consumer", "err", err)
			}))
		if err != nil {
			return nil, fmt.Errorf("nats: notify: %w", err)
		}
		done := make(chan struct{})
		s.notifyStop = func() {
			cc.Stop()
			select {
			case <-cc.Closed():
			case <-time.After(5 * time.Second):
			}
			close(done)
		}
		s.notifyDone = done
	}
	return s.changed.Subscribe(ctx, 0, nil), nil
}

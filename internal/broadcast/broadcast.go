// Package broadcast is the live "new events" signal the stores share: an
// in-process wake-up on every commit, plus an optional poll of the log's head
// for writers in other processes.
package broadcast

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Signal wakes every subscriber when Fire is called. The zero value is not
// usable; call New.
type Signal struct {
	mu      sync.Mutex
	ch      chan struct{} // closed and replaced by Fire
	closed  bool
	waiters atomic.Int64 // subscriptions alive; Fire is free when there are none
}

// New returns a Signal.
func New() *Signal { return &Signal{ch: make(chan struct{})} }

// Fire wakes all subscribers.
func (s *Signal) Fire() {
	if s.waiters.Load() == 0 {
		return
	}
	s.mu.Lock()
	if !s.closed {
		close(s.ch)
		s.ch = make(chan struct{})
	}
	s.mu.Unlock()
}

// Close ends every subscription.
func (s *Signal) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
	s.mu.Unlock()
}

func (s *Signal) current() (chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch, s.closed
}

// Subscribe returns a channel that receives a value (coalesced: at most one
// pending) after each Fire and, when poll > 0, whenever head reports a new
// position. It is closed when ctx ends or the Signal is closed.
func (s *Signal) Subscribe(ctx context.Context, poll time.Duration, head func(context.Context) (uint64, error)) <-chan struct{} {
	out := make(chan struct{}, 1)
	s.waiters.Add(1) // before reading the channel, so no Fire after this is skipped
	ch, closed := s.current()
	if closed {
		s.waiters.Add(-1)
		close(out)
		return out
	}
	var tick <-chan time.Time
	var last uint64
	if poll > 0 && head != nil {
		t := time.NewTicker(poll)
		tick = t.C
		last, _ = head(ctx)
		go func() { <-ctx.Done(); t.Stop() }()
	}
	go func() {
		defer close(out)
		defer s.waiters.Add(-1)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				if ch, closed = s.current(); closed {
					return
				}
			case <-tick:
				p, err := head(ctx)
				if err != nil || p == last {
					continue
				}
				last = p
			}
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	return out
}

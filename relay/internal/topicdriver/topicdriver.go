// Package topicdriver is what the relay's own gocloud.dev pubsub topics
// (natstopic, kafkatopic) share: a driver.Topic that sends one message at
// a time, in order, through a Sender, and the As helper for BeforeSend and
// AfterSend.
package topicdriver

import (
	"context"
	"errors"

	"gocloud.dev/gcerrors"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/batcher"
	"gocloud.dev/pubsub/driver"
)

// Sender sends one message and waits for the broker's acknowledgement.
type Sender interface {
	Send(ctx context.Context, m *driver.Message) error
	// As exposes the client (see driver.Topic.As).
	As(i any) bool
	// ErrorCode classifies the client's errors beyond cancellation.
	ErrorCode(err error) gcerrors.ErrorCode
}

// NewTopic returns a topic sending through s, one message at a time (a
// batch of one, one handler: the relay's order).
func NewTopic(s Sender) *pubsub.Topic {
	return pubsub.NewTopic(topic{s}, &batcher.Options{MaxBatchSize: 1, MaxHandlers: 1})
}

type topic struct{ s Sender }

func (t topic) SendBatch(ctx context.Context, ms []*driver.Message) error {
	for _, m := range ms {
		if err := t.s.Send(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (topic) IsRetryable(error) bool                   { return false } // the clients retry what they can
func (t topic) As(i any) bool                          { return t.s.As(i) }
func (topic) ErrorAs(err error, i any) bool            { return errors.As(err, i) }
func (topic) Close() error                             { return nil }
func (t topic) ErrorCode(err error) gcerrors.ErrorCode { return Code(err, t.s.ErrorCode) }

// Code is context errors' codes, then what more classifies.
func Code(err error, more func(error) gcerrors.ErrorCode) gcerrors.ErrorCode {
	switch {
	case errors.Is(err, context.Canceled):
		return gcerrors.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return gcerrors.DeadlineExceeded
	}
	return more(err)
}

// Expose returns an As function that hands v to a caller asking for a *T,
// for BeforeSend and AfterSend.
func Expose[T any](v T) func(any) bool {
	return func(i any) bool {
		p, ok := i.(*T)
		if ok {
			*p = v
		}
		return ok
	}
}

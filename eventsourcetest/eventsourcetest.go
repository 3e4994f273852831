// Package eventsourcetest tests aggregates without a store: given past
// events, when a command, then these events (or this error).
//
//	func TestWithdrawRejected(t *testing.T) {
//		eventsourcetest.Given(t, &Account{},
//			&AccountOpened{Model: eventsource.Model{ID: "acc-1"}, Owner: "ann"},
//		).
//			When(&Withdraw{CommandModel: eventsource.CommandModel{ID: "acc-1"}, Amount: 10}).
//			ThenError(ErrInsufficientFunds)
//	}
//
// Events are compared with reflect.DeepEqual after the repository's own
// completion: the aggregate ID, version and time of an embedded
// eventsource.Model are filled in when zero, and a time left zero in an
// expected event matches any time.
package eventsourcetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/eventsource-go/eventsource"
)

// Scenario is one Given/When/Then test of an aggregate.
type Scenario[T eventsource.Aggregate] struct {
	t       testing.TB
	agg     T
	version int64
	when    eventsource.Command
	got     []eventsource.Event
	err     error
	ran     bool
}

// Given folds history into agg with its On method, failing t if On returns
// an error. Versions left zero are numbered 1, 2, 3, ….
func Given[T eventsource.Aggregate](t testing.TB, agg T, history ...eventsource.Event) *Scenario[T] {
	t.Helper()
	s := &Scenario[T]{t: t, agg: agg}
	for i, e := range history {
		if e == nil {
			t.Fatalf("Given: event %d is nil", i)
		}
		complete(e, "", int64(i)+1)
		if err := agg.On(e); err != nil {
			t.Fatalf("Given: On(%s) event %d: %v", eventsource.EventType(e), i, err)
		}
		s.version = int64(i) + 1
	}
	return s
}

// When runs cmd through the aggregate's command handler (its Apply method).
func (s *Scenario[T]) When(cmd eventsource.Command) *Scenario[T] {
	s.t.Helper()
	h, ok := any(s.agg).(eventsource.CommandHandler)
	if !ok {
		s.t.Fatalf("When: %T does not implement eventsource.CommandHandler", s.agg)
	}
	s.when = cmd
	s.got, s.err = h.Apply(context.Background(), cmd)
	s.ran = true
	for i, e := range s.got {
		if e != nil {
			complete(e, cmd.AggregateID(), s.version+int64(i)+1)
		}
	}
	return s
}

// Then asserts that the command succeeded and produced exactly want, and
// that the produced events fold into the aggregate without error.
func (s *Scenario[T]) Then(want ...eventsource.Event) *Scenario[T] {
	s.t.Helper()
	s.mustHaveRun("Then")
	if s.err != nil {
		s.t.Fatalf("When(%T): unexpected error %v; want %d events", s.when, s.err, len(want))
	}
	if len(s.got) != len(want) {
		s.t.Fatalf("When(%T): got %d events %s; want %d %s", s.when, len(s.got), describe(s.got), len(want), describe(want))
	}
	for i := range want {
		if want[i] == nil {
			s.t.Fatalf("Then: expected event %d is nil", i)
		}
		complete(want[i], s.when.AggregateID(), s.version+int64(i)+1)
		if !equal(s.got[i], want[i]) {
			s.t.Fatalf("When(%T): event %d is\n\t%#v\nwant\n\t%#v", s.when, i, s.got[i], want[i])
		}
	}
	for i, e := range s.got {
		if err := s.agg.On(e); err != nil {
			s.t.Fatalf("When(%T): produced event %d does not fold: On: %v", s.when, i, err)
		}
	}
	s.version += int64(len(s.got))
	return s
}

// ThenError asserts that the command failed with an error matching target
// (errors.Is), and produced no events.
func (s *Scenario[T]) ThenError(target error) *Scenario[T] {
	s.t.Helper()
	s.mustHaveRun("ThenError")
	if s.err == nil {
		s.t.Fatalf("When(%T): succeeded with %s; want error %v", s.when, describe(s.got), target)
	}
	if !errors.Is(s.err, target) {
		s.t.Fatalf("When(%T): error %v; want %v", s.when, s.err, target)
	}
	if len(s.got) > 0 {
		s.t.Fatalf("When(%T): returned events %s along with its error", s.when, describe(s.got))
	}
	return s
}

// ThenNothing asserts that the command succeeded without producing events.
func (s *Scenario[T]) ThenNothing() *Scenario[T] {
	s.t.Helper()
	return s.Then()
}

// State returns the aggregate, with the produced events folded in after
// Then.
func (s *Scenario[T]) State() T { return s.agg }

func (s *Scenario[T]) mustHaveRun(what string) {
	s.t.Helper()
	if !s.ran {
		s.t.Fatalf("%s called before When", what)
	}
}

var modelType = reflect.TypeFor[eventsource.Model]()

// model returns the embedded Model of e when e is a pointer to a struct that
// embeds one.
func model(e eventsource.Event) *eventsource.Model {
	v := reflect.ValueOf(e)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("Model")
	if !f.IsValid() || f.Type() != modelType || !f.CanAddr() {
		return nil
	}
	return f.Addr().Interface().(*eventsource.Model)
}

func complete(e eventsource.Event, id string, version int64) {
	if m := model(e); m != nil {
		if m.ID == "" {
			m.ID = id
		}
		if m.Version == 0 {
			m.Version = version
		}
	}
}

// equal compares got with want; a zero time in want's Model matches any.
func equal(got, want eventsource.Event) bool {
	if reflect.TypeOf(got) != reflect.TypeOf(want) {
		return false
	}
	gm, wm := model(got), model(want)
	if gm != nil && wm != nil && wm.At.IsZero() {
		saved := gm.At
		gm.At = time.Time{}
		defer func() { gm.At = saved }()
	}
	return reflect.DeepEqual(got, want)
}

func describe(events []eventsource.Event) string {
	s := "["
	for i, e := range events {
		if i > 0 {
			s += ", "
		}
		if e == nil {
			s += "nil"
			continue
		}
		s += fmt.Sprintf("%s v%d", eventsource.EventType(e), e.EventVersion())
	}
	return s + "]"
}

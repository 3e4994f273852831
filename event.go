package eventsource

import (
	"reflect"
	"time"
)

// Event is a fact that happened to an aggregate. Embed Model to implement it,
// or implement the three methods directly.
type Event interface {
	// AggregateID identifies the aggregate (and so the stream) the event
	// belongs to.
	AggregateID() string
	// EventVersion is the event's version in its stream: 1 for the first.
	EventVersion() int64
	// EventAt is when the event happened.
	EventAt() time.Time
}

// EventTyper overrides an event's type name. Without it the name is the Go
// struct's name (UserCreated). The name is what stores keep, so renaming a Go
// type without an EventType method breaks loading of old events.
type EventTyper interface {
	EventType() string
}

// Model is the embeddable base of an event. On save the repository fills in
// ID when it is empty, and Version and At when they are zero. Version and At
// are the record's envelope, not its payload: the JSON codec does not write
// them (the record carries its version and the time the store recorded it,
// which is what decoding sets them to, through any read path), so the
// payload holds the event's own fields and decodes fast. ID stays in the
// payload, where a decoder without the repository's stream prefix finds it.
// Keep a business time of your own in a field of your own: At is when the
// store recorded the event.
type Model struct {
	ID      string    // aggregate ID
	Version int64     `json:"-"` // version of this event in its stream (the record's)
	At      time.Time `json:"-"` // when the event was recorded (the record's)
}

// AggregateID implements Event.
func (m Model) AggregateID() string { return m.ID }

// EventVersion implements Event.
func (m Model) EventVersion() int64 { return m.Version }

// EventAt implements Event.
func (m Model) EventAt() time.Time { return m.At }

// fromRecord sets the Model of an event decoded from rec to the record's
// place: the store's version is the truth.
func fromRecord(e Event, rec Record) {
	if m := modelOf(e); m != nil {
		if rec.Version > 0 {
			m.Version = rec.Version
		}
		if !rec.RecordedAt.IsZero() {
			m.At = rec.RecordedAt
		}
	}
}

// model lets the repository and serializer fill in the model of an event
// passed by pointer. It is promoted to every struct that embeds Model.
func (m *Model) model() *Model { return m }

type modeler interface{ model() *Model }

// modelOf returns the embedded Model of e, or nil when e does not embed one
// addressably.
func modelOf(e Event) *Model {
	if m, ok := e.(modeler); ok {
		return m.model()
	}
	return nil
}

// EventType returns the type name of e: its EventType method's result, or
// the name of its struct type.
func EventType(e Event) string {
	if t, ok := e.(EventTyper); ok {
		return t.EventType()
	}
	t := reflect.TypeOf(e)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.Name()
}

package eventsource

import "context"

// Aggregate is a consistency boundary whose state is the left fold of its
// events. On is the one way its state changes: loading calls On for each
// stored event in version order.
type Aggregate interface {
	On(event Event) error
}

// Command is a request to change one aggregate.
type Command interface {
	AggregateID() string
}

// CommandModel is the embeddable base of a command.
type CommandModel struct {
	ID string // the target aggregate's ID
}

// AggregateID implements Command.
func (m CommandModel) AggregateID() string { return m.ID }

// CommandHandler decides which events a command produces. By convention the
// aggregate is its own command handler: Apply reads the state that On built
// and returns new events without changing the state itself.
type CommandHandler interface {
	Apply(ctx context.Context, command Command) ([]Event, error)
}

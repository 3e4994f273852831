// Package bank is the domain of the examples: accounts, their events and
// commands.
package bank

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventsource-go/eventsource"
)

// Errors the account's command handler returns.
var (
	ErrInsufficientFunds = errors.New("insufficient funds")
	ErrAccountExists     = errors.New("account already open")
	ErrNoAccount         = errors.New("no such account")
	ErrBadAmount         = errors.New("amount must be positive")
)

// Events: facts, named in the past tense.
type AccountOpened struct {
	eventsource.Model
	Owner string
}

type MoneyDeposited struct {
	eventsource.Model
	Amount int64 // cents
}

type MoneyWithdrawn struct {
	eventsource.Model
	Amount int64 // cents
}

// Commands: requests, which the account may refuse.
type OpenAccount struct {
	eventsource.CommandModel
	Owner string
}

type Deposit struct {
	eventsource.CommandModel
	Amount int64
}

type Withdraw struct {
	eventsource.CommandModel
	Amount int64
}

// Account is the aggregate: its state is the fold of its events.
type Account struct {
	ID      string
	Owner   string
	Balance int64
	Version int64
}

// On applies one event. It is the only way the state changes.
func (a *Account) On(e eventsource.Event) error {
	switch e := e.(type) {
	case *AccountOpened:
		a.ID, a.Owner = e.ID, e.Owner
	case *MoneyDeposited:
		a.Balance += e.Amount
	case *MoneyWithdrawn:
		a.Balance -= e.Amount
	default:
		return fmt.Errorf("account: unexpected event %T", e)
	}
	a.Version = e.EventVersion()
	return nil
}

// Apply decides which events a command produces, from the current state.
func (a *Account) Apply(_ context.Context, cmd eventsource.Command) ([]eventsource.Event, error) {
	switch c := cmd.(type) {
	case *OpenAccount:
		if a.Version > 0 {
			return nil, ErrAccountExists
		}
		return []eventsource.Event{&AccountOpened{Owner: c.Owner}}, nil
	case *Deposit:
		if a.Version == 0 {
			return nil, ErrNoAccount
		}
		if c.Amount <= 0 {
			return nil, ErrBadAmount
		}
		return []eventsource.Event{&MoneyDeposited{Amount: c.Amount}}, nil
	case *Withdraw:
		if a.Version == 0 {
			return nil, ErrNoAccount
		}
		if c.Amount <= 0 {
			return nil, ErrBadAmount
		}
		if c.Amount > a.Balance {
			return nil, fmt.Errorf("%w: balance %d, withdrawing %d", ErrInsufficientFunds, a.Balance, c.Amount)
		}
		return []eventsource.Event{&MoneyWithdrawn{Amount: c.Amount}}, nil
	default:
		return nil, fmt.Errorf("account: unexpected command %T", cmd)
	}
}

package bank

import (
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/eventsourcetest"
)

func opened(id string) *AccountOpened {
	return &AccountOpened{Model: eventsource.Model{ID: id}, Owner: "Ann"}
}

func TestOpenAccount(t *testing.T) {
	eventsourcetest.Given(t, &Account{}).
		When(&OpenAccount{CommandModel: eventsource.CommandModel{ID: "a1"}, Owner: "Ann"}).
		Then(&AccountOpened{Model: eventsource.Model{ID: "a1", Version: 1}, Owner: "Ann"})
}

func TestCannotOpenTwice(t *testing.T) {
	eventsourcetest.Given(t, &Account{}, opened("a1")).
		When(&OpenAccount{CommandModel: eventsource.CommandModel{ID: "a1"}, Owner: "Bob"}).
		ThenError(ErrAccountExists)
}

func TestDepositThenWithdraw(t *testing.T) {
	s := eventsourcetest.Given(t, &Account{}, opened("a1"), &MoneyDeposited{Model: eventsource.Model{ID: "a1"}, Amount: 50}).
		When(&Withdraw{CommandModel: eventsource.CommandModel{ID: "a1"}, Amount: 20}).
		Then(&MoneyWithdrawn{Model: eventsource.Model{ID: "a1", Version: 3}, Amount: 20})
	if got := s.State().Balance; got != 30 {
		t.Fatalf("balance %d, want 30", got)
	}
}

func TestWithdrawRejected(t *testing.T) {
	eventsourcetest.Given(t, &Account{}, opened("a1")).
		When(&Withdraw{CommandModel: eventsource.CommandModel{ID: "a1"}, Amount: 10}).
		ThenError(ErrInsufficientFunds)
}

func TestBadAmounts(t *testing.T) {
	for _, amount := range []int64{0, -5} {
		eventsourcetest.Given(t, &Account{}, opened("a1")).
			When(&Deposit{CommandModel: eventsource.CommandModel{ID: "a1"}, Amount: amount}).
			ThenError(ErrBadAmount)
	}
}

// Package eventsource is event sourcing for Go: the domain contract (Event,
// Model, Aggregate, Command, CommandHandler), the Repository that loads
// aggregates, runs commands and saves their events with optimistic
// concurrency, the Registry that encodes events, and the Store contract every
// backend implements (see the store/ packages).
//
// A repository is built with functional options and is generic in the
// aggregate type, so Load returns the user's own type:
//
//	repo := eventsource.New(&Account{}, eventsource.WithStore(store))
//	if err := repo.Bind(&AccountOpened{}, &MoneyDeposited{}); err != nil { ... }
//	version, err := repo.Apply(ctx, &Deposit{CommandModel: eventsource.CommandModel{ID: "42"}, Amount: 100})
//	account, err := repo.Load(ctx, "42") // *Account
//
// Errors are sentinels (ErrConcurrency, ErrNotFound, …) wrapped by typed
// errors with the detail (*ConcurrencyError, *UnknownEventTypeError,
// *DecodeError); test them with errors.Is and errors.As.
//
// This package imports only the standard library.
package eventsource

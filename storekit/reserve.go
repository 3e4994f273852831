package storekit

import (
	"context"
	"fmt"

	"github.com/eventsource-go/eventsource"
)

// Reservations is the logic of eventsource.Reserver for a store that keeps
// reservations in a table: it supplies three conditional operations on one
// row (scope, value) → owner, and Reserve, Release and Get turn their
// outcomes into the contract's results and errors.
type Reservations struct {
	// Insert adds the row unless one exists; inserted reports whether it did.
	Insert func(ctx context.Context, scope, value, owner string) (inserted bool, err error)
	// Delete removes the row if owner holds it; deleted reports whether it did.
	Delete func(ctx context.Context, scope, value, owner string) (deleted bool, err error)
	// Owner reads the row.
	Owner func(ctx context.Context, scope, value string) (owner string, found bool, err error)
}

// Reserve implements eventsource.Reserver.Reserve.
func (o Reservations) Reserve(ctx context.Context, scope, value, owner string) error {
	if err := ValidateReservation(scope, value, owner, true); err != nil {
		return err
	}
	for attempt := 0; attempt < 5; attempt++ { // a holder may release between the two steps
		inserted, err := o.Insert(ctx, scope, value, owner)
		if err != nil || inserted {
			return err
		}
		cur, found, err := o.Owner(ctx, scope, value)
		switch {
		case err != nil:
			return err
		case !found:
			continue
		case cur != owner:
			return &eventsource.ReservedError{Scope: scope, Value: value, Owner: cur}
		}
		return nil
	}
	return fmt.Errorf("%w: %s %q changed hands 5 times during one Reserve", eventsource.ErrConcurrency, scope, value)
}

// Release implements eventsource.Reserver.Release.
func (o Reservations) Release(ctx context.Context, scope, value, owner string) error {
	if err := ValidateReservation(scope, value, owner, true); err != nil {
		return err
	}
	deleted, err := o.Delete(ctx, scope, value, owner)
	if err != nil || deleted {
		return err
	}
	cur, found, err := o.Owner(ctx, scope, value)
	switch {
	case err != nil:
		return err
	case !found:
		return fmt.Errorf("%w: %s %q is not reserved", eventsource.ErrNotFound, scope, value)
	}
	return &eventsource.ReservedError{Scope: scope, Value: value, Owner: cur}
}

// Get implements eventsource.Reserver.Owner.
func (o Reservations) Get(ctx context.Context, scope, value string) (string, error) {
	if err := ValidateReservation(scope, value, "", false); err != nil {
		return "", err
	}
	cur, found, err := o.Owner(ctx, scope, value)
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("%w: %s %q is not reserved", eventsource.ErrNotFound, scope, value)
	}
	return cur, nil
}

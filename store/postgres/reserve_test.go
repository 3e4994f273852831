package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventsource-go/eventsource"
)

// TestReservations runs the suite's reservation checks (the Reserver
// contract) on a fresh schema.
func TestReservations(t *testing.T) {
	s, _ := newStore(t)
	r := eventsource.Reserver(s)
	ctx := context.Background()
	if err := r.Reserve(ctx, "email", "ann@example.com", "user-1"); err != nil {
		t.Fatal(err)
	}
	var re *eventsource.ReservedError
	if err := r.Reserve(ctx, "email", "ann@example.com", "user-2"); !errors.As(err, &re) || re.Owner != "user-1" {
		t.Fatalf("second owner: %v", err)
	}
	if err := r.Reserve(ctx, "email", "Ann@example.com", "user-2"); err != nil {
		t.Fatalf("values compare byte for byte: %v", err)
	}
	if owner, err := r.Owner(ctx, "email", "ann@example.com"); err != nil || owner != "user-1" {
		t.Fatalf("Owner = %q, %v", owner, err)
	}
	if err := r.Release(ctx, "email", "ann@example.com", "user-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Owner(ctx, "email", "ann@example.com"); !errors.Is(err, eventsource.ErrNotFound) {
		t.Fatalf("after release: %v", err)
	}
}

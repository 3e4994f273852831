package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

func (s *Store) reservations() storekit.Reservations {
	t := ident(s.cfg, "reservations")
	return storekit.Reservations{
		Insert: func(ctx context.Context, scope, value, owner string) (bool, error) {
			if err := s.ready(ctx); err != nil {
				return false, err
			}
			tag, err := s.pool.Exec(ctx, `INSERT INTO `+t+` (scope, value, owner) VALUES ($1, $2, $3) ON CONFLICT (scope, value) DO NOTHING`, scope, value, owner)
			if err != nil {
				return false, wrap(ctx, err, "reserve %s %q", scope, value)
			}
			return tag.RowsAffected() == 1, nil
		},
		Delete: func(ctx context.Context, scope, value, owner string) (bool, error) {
			if err := s.ready(ctx); err != nil {
				return false, err
			}
			tag, err := s.pool.Exec(ctx, `DELETE FROM `+t+` WHERE scope = $1 AND value = $2 AND owner = $3`, scope, value, owner)
			if err != nil {
				return false, wrap(ctx, err, "release %s %q", scope, value)
			}
			return tag.RowsAffected() == 1, nil
		},
		Owner: func(ctx context.Context, scope, value string) (string, bool, error) {
			if err := s.ready(ctx); err != nil {
				return "", false, err
			}
			var owner string
			err := s.pool.QueryRow(ctx, `SELECT owner FROM `+t+` WHERE scope = $1 AND value = $2`, scope, value).Scan(&owner)
			if errors.Is(err, pgx.ErrNoRows) {
				return "", false, nil
			}
			if err != nil {
				return "", false, wrap(ctx, err, "reservation %s %q", scope, value)
			}
			return owner, true, nil
		},
	}
}

// Reserve implements eventsource.Reserver: an INSERT … ON CONFLICT DO
// NOTHING on the primary key (scope, value).
func (s *Store) Reserve(ctx context.Context, scope, value, owner string) error {
	return s.reservations().Reserve(ctx, scope, value, owner)
}

// Release implements eventsource.Reserver.
func (s *Store) Release(ctx context.Context, scope, value, owner string) error {
	return s.reservations().Release(ctx, scope, value, owner)
}

// Owner implements eventsource.Reserver.
func (s *Store) Owner(ctx context.Context, scope, value string) (string, error) {
	return s.reservations().Get(ctx, scope, value)
}

var _ eventsource.Reserver = (*Store)(nil)

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/eventsource-go/eventsource/storekit"
)

func (s *Store) reservations() storekit.Reservations {
	t := s.prefix + "reservations"
	return storekit.Reservations{
		Insert: func(ctx context.Context, scope, value, owner string) (bool, error) {
			if err := s.ready(ctx); err != nil {
				return false, err
			}
			s.wmu.Lock()
			defer s.wmu.Unlock()
			res, err := s.db.ExecContext(ctx, `INSERT INTO `+t+` (scope, value, owner, reserved_at) VALUES (?, ?, ?, ?) ON CONFLICT (scope, value) DO NOTHING`,
				scope, value, owner, time.Now().UnixNano())
			if err != nil {
				return false, s.wrap("reserve", err)
			}
			n, err := res.RowsAffected()
			return n == 1, err
		},
		Delete: func(ctx context.Context, scope, value, owner string) (bool, error) {
			if err := s.ready(ctx); err != nil {
				return false, err
			}
			s.wmu.Lock()
			defer s.wmu.Unlock()
			res, err := s.db.ExecContext(ctx, `DELETE FROM `+t+` WHERE scope = ? AND value = ? AND owner = ?`, scope, value, owner)
			if err != nil {
				return false, s.wrap("release", err)
			}
			n, err := res.RowsAffected()
			return n == 1, err
		},
		Owner: func(ctx context.Context, scope, value string) (string, bool, error) {
			if err := s.ready(ctx); err != nil {
				return "", false, err
			}
			var owner string
			err := s.db.QueryRowContext(ctx, `SELECT owner FROM `+t+` WHERE scope = ? AND value = ?`, scope, value).Scan(&owner)
			if errors.Is(err, sql.ErrNoRows) {
				return "", false, nil
			}
			return owner, err == nil, s.wrap("reservation owner", err)
		},
	}
}

// Reserve implements eventsource.Reserver.
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

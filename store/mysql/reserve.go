package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/eventsource-go/eventsource/storekit"
)

func (s *Store) reservations() storekit.Reservations {
	t := "`" + s.cfg.prefix + "reservations`"
	return storekit.Reservations{
		// Insert reports false even when it inserted: affected-row counts
		// of ON DUPLICATE KEY depend on the DSN's clientFoundRows, so the
		// owner is read back instead.
		Insert: func(ctx context.Context, scope, value, owner string) (bool, error) {
			if err := s.ready(ctx); err != nil {
				return false, err
			}
			_, err := s.db.ExecContext(ctx, "INSERT INTO "+t+" (scope, value, owner, reserved_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE owner = owner",
				scope, value, owner)
			if err != nil {
				return false, fmt.Errorf("mysql: reserve %s %q: %w", scope, value, err)
			}
			return false, nil
		},
		Delete: func(ctx context.Context, scope, value, owner string) (bool, error) {
			if err := s.ready(ctx); err != nil {
				return false, err
			}
			res, err := s.db.ExecContext(ctx, "DELETE FROM "+t+" WHERE scope = ? AND value = ? AND owner = ?", scope, value, owner)
			if err != nil {
				return false, fmt.Errorf("mysql: release %s %q: %w", scope, value, err)
			}
			n, err := res.RowsAffected()
			return n == 1, err
		},
		Owner: func(ctx context.Context, scope, value string) (string, bool, error) {
			if err := s.ready(ctx); err != nil {
				return "", false, err
			}
			var owner []byte
			err := s.db.QueryRowContext(ctx, "SELECT owner FROM "+t+" WHERE scope = ? AND value = ?", scope, value).Scan(&owner)
			if errors.Is(err, sql.ErrNoRows) {
				return "", false, nil
			}
			if err != nil {
				return "", false, fmt.Errorf("mysql: reservation %s %q: %w", scope, value, err)
			}
			return string(owner), true, nil
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

package postgres

import "context"

// ReadAllSQL is the unfiltered global-log query of s, with $1 the first
// position and $2 the page size.
func ReadAllSQL(ctx context.Context, s *Store) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	sql, _ := s.q.readAllSQL(&filter{})
	return sql, nil
}

// MigrateTo applies s's migrations up to version v only, as an older
// version of the store would have.
func MigrateTo(ctx context.Context, s *Store, v int) error { return s.migrate(ctx, v) }

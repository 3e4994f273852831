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

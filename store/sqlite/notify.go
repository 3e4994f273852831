package sqlite

import "context"

// Notify implements eventsource.Notifier: appends through this Store signal at
// once; appends by other processes are found by polling.
func (s *Store) Notify(ctx context.Context) (<-chan struct{}, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	return s.signal.Subscribe(ctx, s.poll, s.Head), nil
}

package dynamodb

import "context"

// Notify implements eventsource.Notifier: appends through this Store signal
// at once; appends by other processes are seen by polling the position
// counter (one strongly consistent read per WithPollInterval).
func (s *Store) Notify(ctx context.Context) (<-chan struct{}, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return s.changed.Subscribe(ctx, s.poll, s.counter), nil
}

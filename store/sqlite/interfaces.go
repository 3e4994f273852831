package sqlite

import "github.com/eventsource-go/eventsource"

// The contract and the optional capabilities the store implements (and
// storetest tests); Limiter is checked beside Limits.
var (
	_ eventsource.Store           = (*Store)(nil)
	_ eventsource.Notifier        = (*Store)(nil)
	_ eventsource.HeadReader      = (*Store)(nil)
	_ eventsource.StreamLister    = (*Store)(nil)
	_ eventsource.StreamDeleter   = (*Store)(nil)
	_ eventsource.Reserver        = (*Store)(nil)
	_ eventsource.SnapshotStore   = (*Store)(nil)
	_ eventsource.StreamLifecycle = (*Store)(nil)
	_ eventsource.Scavenger       = (*Store)(nil)
)

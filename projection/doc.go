// Package projection is the read side of eventsource, written once on top
// of the store contract so it runs unchanged on every store:
//
//   - Subscription: a catch-up subscription to the global log that reads
//     history in batches, then follows new records live (the store's
//     eventsource.Notifier, or polling with backoff), with no gap or
//     duplicate at the switch; filters in the store (eventsource.Filter) and
//     conditions on metadata and record fields (Where, Meta, Type, …); lag in
//     events and in time.
//   - Query: a one-off fold of part of the log (one stream, several merged
//     by global position, a category, everything) into a state.
//   - Projection: a named, persistent fold whose state is saved with its
//     checkpoint in one write.
//   - Projector: drives the user's ReadModel; with a SQL TxCheckpointStore the read
//     model's writes and the checkpoint commit in one transaction, so each
//     event is applied exactly once even if the process is killed at any
//     point. Elsewhere delivery is at least once. Its workers (WithWorkers)
//     apply different partition keys in parallel and each key in log order;
//     the checkpoint is a low-water mark plus the positions handled above
//     it. Failing events can be parked (ErrorPolicy.Park) and replayed or
//     discarded; a new version (WithVersion) rebuilds beside the live one
//     and takes over when caught up and its delivery checked (blue/green,
//     ErrIncomplete when the check fails); side effects
//     (SideEffects) run only for the version that serves, above its
//     horizon; and Verify checks, from digests kept with the checkpoint,
//     that every event was handled exactly once.
//
// Projections and projectors hold a lease in their checkpoint store, so two
// instances never process at once; a standby takes over when the holder's
// lease expires. Their status (running, stopped, resetting, deleting,
// faulted) and control requests (Stop, Reset, Delete, Skip, Start) live in
// the checkpoint store too, so one process can steer another's projection.
//
//	checkpoints, _ := sqlcheckpoint.New(db, sqlcheckpoint.SQLite)
//	p := projection.NewProjector("balances", events, checkpoints, &Balances{})
//	err := p.Run(ctx)
package projection

// Package storekit holds the rules every event store must follow, written
// once, for the people who write stores: this module's six and third
// parties'. A store that uses it and passes storetest behaves as the
// contract in the root package says.
//
//   - ValidateAppend and ValidateReservation check a call's arguments
//     against the store's limits before anything is sent.
//   - ExactRetry decides what an append whose first event ID is already
//     stored is: an exact retry (the original result) or ErrDuplicateEvent.
//   - Reservations turns three conditional row operations into Reserver.
//   - ValidateSnapshot and NoSnapshot are SnapshotStore's checks and
//     not-found error.
//   - The stream lifecycle: ValidateStreamMetadata, the stored form of
//     metadata (EncodeStreamMetadata), and Retention — what a stream's rules
//     make visible (Visible), how each write moves them (Next, one-way),
//     what NoStream means for a soft-deleted stream (Expect), and which
//     streams ListStreams leaves out (Absent).
//   - BeforeCommit is the seam the conformance suite uses to hold a commit
//     between writing records and committing them.
//   - Sleep and Wrap are the small helpers every store needs.
package storekit

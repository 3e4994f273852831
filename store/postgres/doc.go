// Package postgres is an eventsource.Store on PostgreSQL (13 or later; tested
// on 15) through pgx v5. Besides the Store contract it implements
// eventsource.Notifier (LISTEN/NOTIFY), HeadReader, StreamLister,
// StreamDeleter, StreamLifecycle (stream metadata, retention rules, soft and
// hard deletes), Scavenger, SnapshotStore and Reserver, and offers AppendTx
// to append inside a transaction of your own, next to your other writes (an
// outbox, a read model).
//
//	pool, _ := pgxpool.New(ctx, "postgres://app@db/app")
//	store := postgres.New(pool, postgres.WithSchema("events"))
//	defer store.Close()
//	repo := eventsource.New(&User{}, eventsource.WithStore(store))
//
// or, with a pool the store owns: store, err := postgres.Open(ctx, url).
//
// # Tables
//
// Migrations are numbered SQL files embedded in the package
// (migrations/001_initial.up.sql), applied by Migrate in one transaction under
// an advisory lock and recorded in {prefix}schema_migrations, so processes
// that start together migrate safely; a database of an older version is
// upgraded in place (the new columns have constant defaults, so no table is
// rewritten). The store migrates on first use unless WithoutAutoMigrate is
// given. Table names are {prefix}streams, {prefix}events,
// {prefix}retention, {prefix}snapshots, {prefix}reservations,
// {prefix}inline_projections and {prefix}inline_applied ("es_" by
// default), in the schema of WithSchema or the search_path; identifiers
// come only from validated options.
//
//   - {prefix}streams(stream_id PRIMARY KEY, meta jsonb, meta_version): one
//     row per stream that has events or metadata, for ListStreams and the
//     lifecycle. An append inserts it for a new stream and does not write it
//     otherwise; a stream's version is the largest version among its events
//     (or its retention head, below).
//   - {prefix}events(position PRIMARY KEY, stream_id, version, event_id
//     UNIQUE, type, codec, data bytea, metadata jsonb, recorded_at,
//     UNIQUE (stream_id, version)).
//   - {prefix}retention(stream_id PRIMARY KEY, cut, max_age, since,
//     max_count, head): the rules of the streams that have any (see Stream
//     lifecycle); empty in a store that never set one.
//
// Indexes, and why only these: the position key serves the global log
// (keyset pages in position order, Head as a backward scan, the per-
// transaction max(position) of an append); (stream_id, version) serves
// stream reads and is the backstop against two events at one version;
// event_id makes retries idempotent and duplicates detectable. There are no
// indexes on type or metadata: each one would cost every append, and
// filtered ReadAll is a forward scan by position that catch-up subscriptions
// do anyway, with the filter evaluated in the database. Add one (a GIN index
// on metadata, or (type, position)) if you run selective queries over a large
// log. stream_id is COLLATE "C", so streams list in byte order (the
// contract's order) and a prefix is a plain index range.
//
// # Appends
//
// An append is one SQL statement, so one round trip in autocommit. Its
// version check runs in the {prefix}append_version function of
// migrations/005, which first takes a lock that lifecycle writes
// (DeleteStream, TombstoneStream, SetStreamMetadata) conflict with (a shared
// advisory lock keyed by the stream in READ COMMITTED, which writes
// nothing; the streams row FOR SHARE in REPEATABLE READ or SERIALIZABLE)
// and then, with a snapshot taken after the lock, reads in one query the
// stream's version, max(version) of its events (an index probe on
// (stream_id, version)), and its rules (a probe of {prefix}retention). A
// tombstoned stream is refused there (*eventsource.StreamDeletedError),
// NoStream is resolved for a soft-deleted stream, and a stream with a
// MaxCount has its cut raised, all in the append's statement. The events
// are inserted in the same statement (one plain row of parameters for a
// single record, unnest() of array parameters for more); a new stream also
// gets its streams row (INSERT … ON CONFLICT DO NOTHING). An existing
// stream's row is not written, so a single-event append to a stream
// without a MaxCount writes one heap row, as a plain INSERT does.
//
// Two appends racing at one version both pass the check; the unique
// (stream_id, version) index makes the second wait for the first's commit
// and then refuses it. When the check fails or a unique key refuses the
// append, nothing is written and a second query tells a conflict
// (*eventsource.ConcurrencyError) from an idempotent retry (the same event
// IDs stored right after the expected version: the original AppendResult)
// and from a duplicate (eventsource.ErrDuplicateEvent), by the rules of the
// memory store; a raw unique violation never reaches the caller. An append
// with Any that loses a race simply goes again (each retry also takes the
// streams row FOR NO KEY UPDATE, so retries on one stream take turns), up to
// 32 attempts, after which it returns the *ConcurrencyError.
//
// # Global order, and why no reader skips an event
//
// A record's position is (top-level transaction ID << 20) + its index within
// the transaction (1, 2, …; the append statement continues after the largest
// position its transaction already wrote, in a range no other transaction
// can write to). A reader of the global log sees only positions below
// xmin << 20, where xmin is pg_snapshot_xmin(pg_current_snapshot()) of its
// own statement:
//
//   - every transaction whose ID is below xmin has ended, so every record it
//     will ever have is committed and visible to the reader's snapshot, or
//     never will be;
//   - every transaction that has not ended, or has not started, has an ID of
//     at least xmin (IDs are handed out in increasing order), so all of its
//     records lie at or above the bound;
//   - xmin never decreases, so a later read's bound is at least as high.
//
// Hence a reader that has seen position P will never meet a newly committed
// record at or below P: positions only grow, and nothing is skipped, whatever
// order transactions commit in. Stream reads (ReadStream) need no bound: an
// append inserts version N+1 only after reading N as committed (or written
// by its own transaction), and a racing insert of N+1 waits for the first,
// so a stream's versions commit in order.
//
// The price: a record becomes visible in the global log only once every
// older transaction of the whole PostgreSQL cluster (any database, any
// table) has ended. A long-running write transaction anywhere delays (never
// loses) global-log visibility; so does an idle-in-transaction session that
// holds a transaction ID. ReadAll and Head therefore wait, at the end of the
// log, up to WithReadWait (2s by default) for the transactions that hold back
// already-committed records to end, so that "append, then read the log"
// works under concurrent load; the Notify listener's Head poll signals
// subscribers when held-back records come through.
//
// Limits: transaction IDs (xid8, with epoch) must stay below 2^43 so that
// positions fit in a bigint: 8.8 trillion transactions, centuries at a
// million transactions a second. One transaction holds at most 1,048,575
// events (2^20 - 1); an append past that fails with eventsource.ErrTooLarge
// (only reachable with AppendTx, as one append holds at most
// eventsource.MaxRecordsPerCall). One append carries at most 64 MiB
// (eventsource.AppendSize; see Limits). Positions are sparse: they grow by about 2^20 per
// transaction, so use them as an order and a checkpoint, not as a count.
//
// Locks: in READ COMMITTED an append holds a shared advisory lock per stream
// it appends to until its transaction ends (lifecycle writes take it
// exclusively), in the two-key advisory lock
// space with keys (the events table's OID, hashtext(stream ID)); an
// application that uses advisory locks with the same two keys would contend
// with appends. The locks live in PostgreSQL's shared lock table
// (max_locks_per_transaction × max_connections entries, 6,400 by default),
// so one AppendTx transaction that appends to thousands of distinct streams
// may need a larger max_locks_per_transaction.
//
// # Stream lifecycle: what is physical, what is logical
//
// A stream's metadata (eventsource.StreamMetadata, as
// storekit.EncodeStreamMetadata writes it) is the meta column of its
// {prefix}streams row, its metadata version meta_version. The rules that
// reads and appends apply (storekit.Retention) are its {prefix}retention
// row: cut (the first visible version; math.MaxInt64 once tombstoned),
// max_age in nanoseconds, since (what an earlier MaxAge retired), max_count,
// and head. SetStreamMetadata, DeleteStream (a soft delete: TruncateBefore =
// version + 1) and TombstoneStream write both rows, and delete the stream's
// {prefix}snapshots for a delete, in one READ COMMITTED transaction that
// holds the stream's advisory lock exclusively and its streams row FOR
// UPDATE, so they wait for appends in flight and no append runs under them;
// an append to a stream with a MaxCount raises the cut in its own
// statement. Retention rows are never deleted: retiring is one-way.
//
// Retiring is logical: records stay in {prefix}events, and from the commit
// of the write that retires them every read leaves them out. ReadStream
// starts at the cut and skips records recorded before the oldest the rules
// keep; ReadAll leaves out, in the page query itself, each record its
// stream's rules retire (a probe of {prefix}retention's key per record,
// skipped for the whole page while no row is active — one that can still
// hide a stored record: an age rule, or a cut with records below it not
// yet scavenged; rows of values only, and deleted, truncated or tombstoned
// streams once scavenged, are inert (migration 006) — so a store without
// active rules pays one look at a partial index per page); ListStreams leaves out
// streams with no visible version. MaxAge is judged by the database's
// clock (now() of the reading statement), as recorded_at is written.
//
// Only Scavenge removes records physically: for each stream with a
// non-zero retention, in stream ID order, one DELETE (its own transaction)
// removes from {prefix}events the records its rules retire, and keeps the
// stream's version in its retention row's head, so the version survives
// even when every record goes, and the newest position it removed
// (last_removed), so that Head never goes back. Positions are not reused; the event IDs of
// removed records become free. A scavenged soft-deleted or tombstoned
// stream keeps its {prefix}streams and {prefix}retention rows, so it goes
// on continuing its versions, or refusing writes.
//
// Costs: in a store with active rules, each record the global log reads costs one
// index probe of {prefix}retention (about 1 µs of server CPU, half again
// the cost of an unruled read in our measurements); and, as the planner
// counts that probe, a WithBatchSize above about 8,000 can take the page
// query over jit_above_cost, so where JIT is on, raise that or keep
// batches smaller.
//
// # Inline projections
//
// WithInline registers a projection.ReadModel[pgx.Tx] whose tables live in
// the same database. Append then runs in a READ COMMITTED transaction of
// its own (BEGIN, the append statement, the projections, COMMIT, instead
// of one autocommit statement), and AppendTx keeps its savepoint open
// until the projections have run: each projection's Apply gets the
// append's records as a read returns them (Data as stored, encrypted or
// not; recorded_at is the transaction's now()), after they are inserted.
// After the append returns (for AppendTx: inside the caller's transaction)
// the read model shows it; if Apply fails, the append rolls back (AppendTx:
// to its savepoint, leaving the transaction usable) and returns an
// *eventsource.InlineProjectionError, having stored nothing. An exact retry
// stores nothing and applies nothing. Projections run in the order given.
// Open (or the first Append or AppendTx, for New; on connections of its
// own) creates each projection's row and, when IsInitialized says the read
// model is not there, calls Init and starts it from position 0, in one
// transaction; then it applies what the global log shows, a batch
// (WithBatchSize) per transaction, so a projection added to a store with
// history covers it.
//
// Positions are not assigned in commit order here (see Global order), so a
// projection's state is not one position. It is two things, in migration
// 007: its position W in {prefix}inline_projections (every record below W
// was applied, or retired before the projection met it) and, in
// {prefix}inline_applied, the ranges of positions at or above W it has
// applied. An append made with the projection adds its own records' range
// in its transaction, so the range commits exactly when the records do.
// W only moves to a visibility bound B (xmin << 20 of a statement that
// found nothing below B left to apply) or past records applied under the
// projection's row lock: every transaction that can still add a record
// below B has ended, so no record can appear below W later, and the
// ranges below W are dropped.
//
// In each append, for each projection, one statement reads W, B, and
// whether anything must be applied first: a record below B that is
// neither below W, nor in a range, nor retired (appended without the
// option — by a Store without it, another process, the command-line
// tool); or the stream's previous version, unapplied (such an append by a
// transaction newer than B). Usually there is nothing, and the append
// applies its records, adds its range and, in READ COMMITTED, moves W to
// B with FOR UPDATE SKIP LOCKED (one append at a time moves it; none waits
// for it). Otherwise it locks the row (FOR UPDATE, which waits for an
// append doing the same and then reads the state afresh, so no record is
// applied twice), applies the records below B in position order and moves
// W to B, then walks the stream back from the append (one index probe per
// version) and applies its unapplied versions in order, adding a range for
// each, and only then its own records: a stream's events reach the read
// model in version order even while a long transaction holds B back.
// Records that reach the global log only later (behind a long transaction,
// in other streams) are applied by the first append with the projection
// after B passes them, or at the next Open. Retired records are skipped,
// as ReadAll skips them; an append's own records are applied even when its
// MaxCount retires some at once.
//
// Costs and caveats: about four round trips more per append (BEGIN and
// COMMIT, the state, the range), plus Apply; the state statement scans the
// records between W and B, which is few while appends keep W at B.
// AppendTx in REPEATABLE READ or SERIALIZABLE never moves W (a row another
// append moved since its snapshot would fail it) and, when it must lock
// the row, fails with a serialization error if another append moved it;
// retry the transaction. Two stores that register the same projections in
// different orders may deadlock on their rows (PostgreSQL aborts one).
//
// # Durability
//
// An append returns after its commit, with the server's synchronous_commit
// setting (on by default: the commit is flushed to the WAL on disk, and on
// synchronous standbys if configured). With synchronous_commit = off an
// acknowledged append can be lost in a server crash (never half of one).
// The store does not change the setting; set it per role or database.
//
// If the context is cancelled while an append's statement runs, the append
// may or may not have committed (PostgreSQL finishes a statement whose
// client has gone); retry it with the same event IDs, which is idempotent.
//
// # Live signal
//
// After an append commits, the store signals its own Notify channels at once
// and a background goroutine sends pg_notify on a channel named after the
// schema and prefix, for other processes; appends that complete while one
// pg_notify is on its way, or within 2ms after it, share the next one (a
// pg_notify is a transaction of its own, and one per append cost a single
// writer about a fifth of its throughput in BENCHMARKS.md). The notification is deliberately
// not sent inside the append's transaction: PostgreSQL serialises the
// commits of notifying transactions (a database-wide lock held while the
// commit is flushed), which cost concurrent writers more than half their
// throughput in BENCHMARKS.md. AppendTx, whose commit the store does not see,
// notifies inside the caller's transaction. A Store keeps one dedicated
// listener connection (outside the pool) for all its Notify channels,
// reconnects it after a failure, and polls Head once a second while anyone
// listens, so a lost notification (a crash between commit and pg_notify, a
// listener outage) only delays a signal. WithNotify(false) turns
// pg_notify and LISTEN off; Notify then relies on local appends and the poll.
package postgres

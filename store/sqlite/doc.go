// Package sqlite is the embedded default event store: one SQLite file, pure
// Go (modernc.org/sqlite, no cgo), no server to run.
//
//	store, err := sqlite.Open(ctx, "bank.db")
//	if err != nil { ... }
//	defer store.Close()
//	repo := eventsource.New(&Account{}, eventsource.WithStore(store))
//
// # Ordering and concurrency
//
// SQLite lets one writer at a time hold the database; appends from one
// process also take turns on a mutex, and appends from other processes wait
// on SQLite's lock (busy timeout 10s). So the order of positions (an
// AUTOINCREMENT key, never reused) is the order of commits, and a reader of
// the global log can never see position P+1 before P. Readers run
// concurrently with the writer (WAL mode).
//
// # Durability
//
// Open uses journal_mode=WAL with synchronous=NORMAL: a commit is atomic and
// survives a crash of the process, but the last transactions before a power
// loss or operating-system crash may be lost (never half-applied). For
// durability across power loss, open the *sql.DB yourself with
// synchronous(FULL) in the DSN and pass it to New, at the cost of an fsync per
// append.
//
// # Schema
//
// Tables {prefix}events, {prefix}stream_rules, {prefix}snapshots,
// {prefix}reservations, {prefix}inline_projections and
// {prefix}schema_migrations ("es_" by default, see
// WithTablePrefix), created or upgraded on first use by the embedded,
// numbered migrations (see Migrate); a database of an earlier version is
// upgraded in place. Event metadata is a JSON object; global-log filters,
// including metadata matches, run in SQLite.
//
// # Stream lifecycle
//
// The store implements eventsource.StreamLifecycle and Scavenger. A stream
// with metadata, or one that was deleted, has one row in
// {prefix}stream_rules (streams without have none): its metadata document
// (storekit.EncodeStreamMetadata) and metadata version, and the retention
// its reads need — the cut (the first visible version; math.MaxInt64 for a
// tombstone), MaxAge and the time before which an earlier MaxAge retired
// records — with the stream's head version. A metadata write, DeleteStream
// (a soft delete: TruncateBefore = version + 1) and TombstoneStream write
// that row in one transaction, deletes also removing the stream's
// snapshots; an append to a stream with MaxCount moves its cut in the
// append's transaction, and every append reads the row there (a primary-key
// lookup), so a tombstone that committed is never followed by an append.
//
// Retiring is logical: nothing leaves {prefix}events when a rule or a
// delete is written. Each page of ReadStream and ReadAll reads the rules in
// its own statement and leaves out what they retire, so a rule holds for
// every reader, in every process, from its commit (ReadAll skips the
// per-record lookup while no rules row is active: one that can still hide
// a stored record — an age rule, or a cut above 1 with records below it
// not yet scavenged; rows of values only, and deleted or truncated streams
// once scavenged, are inert: migration 005). Only Scavenge removes
// records: for each stream whose row retires something, in one transaction
// per stream, it deletes the retired rows of {prefix}events and keeps the
// stream's version in the rules row, so versions continue after every
// record is gone. Their event IDs become free; positions stay taken
// (AUTOINCREMENT, which Head reports). Rules rows are never removed.
//
// # Inline projections
//
// WithInline registers a projection.ReadModel[*sql.Tx] whose tables live in
// the same database file: every append calls its Apply in the append's own
// write transaction, after inserting the records, with the records as a
// read returns them (Data as stored, encrypted or not; RecordedAt and
// positions filled). So after Append returns the read model shows the
// append (read-your-writes), and if Apply fails the transaction rolls back
// and Append returns an *eventsource.InlineProjectionError: nothing is
// stored, the head, the stream and the read models stay as they were.
// An exact retry of an append stores nothing and applies nothing. The same
// read model can be rebuilt by a projection.Projector. Several projections
// run in the order given, each in the same transaction.
//
// Each projection keeps its position, the last position of the log it has
// seen, in {prefix}inline_projections (migration 006), moved in the
// transaction that applies. Open (or the first Append, for New or
// WithoutAutoMigrate) creates the read model when IsInitialized says it is
// not there (a new read model starts from position 0) and applies what the
// global log shows after its position, a batch (WithBatchSize) per
// transaction, so a projection added to a store with history covers all
// of it.
//
// Why nothing is missed: SQLite has one writer at a time, across
// connections and processes, and AUTOINCREMENT positions are assigned in
// that order, so the records below an append's first position have all
// committed before it began. An append made without the projection (by a
// Store without the option, another process, the command-line tool) leaves
// the projection's position behind; the next append with it finds its
// position below its own first position minus one, and applies what the
// global log shows in between first, in its transaction, before its own
// records. Records a stream's rules retired before the projection saw them
// (deleted, truncated, aged out) are skipped, as ReadAll skips them; an
// append's own records are applied even when its MaxCount retires some of
// them at once. The cost of a projection is its Apply plus two primary-key
// statements per append; appends already take turns, so it adds no
// contention of its own.
//
// # Limits
//
// Data up to WithMaxDataSize (1 MiB by default), 65,536 records and 64 MiB
// (eventsource.AppendSize) per append, the portable metadata limits: see
// Limits.
package sqlite

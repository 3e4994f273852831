// Package mysql is an eventsource.Store on MySQL (8.0+) or MariaDB (10.5+),
// through database/sql and github.com/go-sql-driver/mysql.
//
//	s, err := mysql.Open(ctx, "user:pass@tcp(127.0.0.1:3306)/app")
//	if err != nil { ... }
//	defer s.Close()
//	repo := eventsource.New(&User{}, eventsource.WithStore(s))
//
// or, on a pool the caller owns: mysql.New(db, mysql.WithTablePrefix("es_")).
//
// # Tables
//
// Tables, named with a validated prefix ("es_" by default):
// {prefix}streams (stream ID → version, and whether the stream has rules),
// {prefix}events (one row per record, keyed by global position, unique on
// (stream ID, version) and on event ID), {prefix}position (one row: the last
// position handed out), {prefix}stream_rules (metadata and retention of the
// streams that have any; see Stream lifecycle), {prefix}snapshots,
// {prefix}reservations, {prefix}inline_projections (see Inline projections)
// and {prefix}schema_migrations. They are created by
// versioned migrations embedded in the package (migrations/*.up.sql), on
// first use or by Migrate, which serialises concurrent migrators with
// GET_LOCK; a database made by an older version is upgraded in place. IDs,
// type and codec names are VARBINARY, compared byte for byte: the default
// collations fold case and trailing spaces and would merge distinct
// streams. Metadata is JSON (LONGTEXT with a JSON check on MariaDB);
// recorded times are DATETIME(6) in UTC, from the server's clock.
//
// # Appends
//
// An append is one transaction: the version check on the stream's row (an
// INSERT for NoStream, a conditional UPDATE for Exact and StreamExists, an
// upsert for Any, each refusing a stream with rules, which goes the way
// Stream lifecycle describes), then the position counter, then one
// multi-row INSERT of the records, then COMMIT. A refused version check or
// a duplicate event ID rolls back and is resolved as the contract says: an
// exact retry of stored event IDs returns the original result, a partial
// one is eventsource.ErrDuplicateEvent, anything else a
// *eventsource.ConcurrencyError.
// Deadlocks (1213) and lock wait timeouts (1205) are retried up to five
// times. A cancelled context rolls back. If the connection breaks during
// COMMIT the outcome is unknown to the client; retrying with the same event
// IDs is safe (it is idempotent).
//
// One append holds at most 65,536 records and 64 MiB (eventsource.AppendSize;
// the records go in as many INSERTs as max_allowed_packet needs). Each record
// is one row of one INSERT, so Limits lowers the Data a record may have to
// what the server's max_allowed_packet holds with the data and metadata
// escaped (about 7.8 MiB with MariaDB's default 16 MiB packet).
//
// # Global order
//
// ReadAll must never skip: once a reader has seen position P, no record
// committed later may have a position ≤ P. AUTO_INCREMENT breaks this (values
// are taken in one order and committed in another, and MySQL has no snapshot
// xmin to tell a reader which gaps may still fill). So positions come from a
// counter row instead:
//
//	UPDATE {prefix}position SET position = LAST_INSERT_ID(position + n) WHERE id = 1
//
// run inside the append's transaction after its version check. The row lock
// is held until COMMIT, so the next append gets its positions only after
// this one has committed: appends commit in position order.
//
// Committing is not the same as being visible, though. This store first
// assumed InnoDB makes a transaction visible to new read views before it
// releases its locks; on MariaDB 10.11 under load the suite's NoMissedEvents
// test failed about once in 40 runs ("reader saw 624 events, writers
// committed 630, 6 never seen"): a reader saw an append whose predecessor,
// already unlocked, was not yet visible, and moved past it. So each append,
// once it holds the counter, checks that the append before it is visible:
// in the same transaction, a consistent read of the highest position in the
// log must equal the counter's old value (the read view is made there, after
// the lock). By induction every append commits only after all earlier ones
// are visible, so every snapshot a reader takes holds a prefix of the log
// (minus scavenged records). When the check fails (the predecessor is not
// visible yet, or its rows were scavenged since), the append runs again with
// a precise check before taking positions: the counter read with FOR UPDATE
// and then by a read view must agree; if they do not, it waits a few
// milliseconds and tries again. The check costs one indexed read per append,
// lost in the noise of the commit flush in BENCHMARKS.md's runs; with it,
// 100 runs of NoMissedEvents under load passed. TestAppendAfterScavengedTail
// takes the precise path (it appends after a scavenge removed the log's
// tail).
//
// ReadAll is then a keyset scan, WHERE position >= ? ORDER BY position
// LIMIT batch, with one snapshot per batch (and the rules test of Stream
// lifecycle). The suite's NoMissedEvents test, which holds commits open at
// random, fails within a run if the counter is taken outside the
// transaction; TestHeldCommit holds one commit for 300ms while others wait.
//
// The price is that appends are serialised globally from the counter UPDATE
// to the end of COMMIT: the INSERT of the records and the COMMIT itself. The
// version check and all validation come before, so only that window is
// serial, but on MariaDB 10.11 the window includes the redo log flush: in
// the benchmark, 2,000 single-event appends by 8 writers made about 1,900
// InnoDB fsyncs (Innodb_data_fsyncs; no group commit), where 2,000 raw autocommit INSERTs made about
// 800. So appends run at roughly one per commit latency whatever the number
// of writers: with 8 writers on distinct streams the store is no faster
// than with one, while raw INSERTs scale with group commit. Batching records
// into fewer appends is the way to more events per second (BENCHMARKS.md).
//
// Rejected: a timer-based gap skip (read up to the highest committed
// position, but wait for a gap to fill for at most a timeout). A commit
// delayed past the timeout (a GC pause, a slow fsync, a lock wait) is then
// skipped for good, which is exactly the bug being avoided. A high-water mark
// that skips a gap only when no live transaction can still fill it would
// let appends run in parallel, but MySQL offers no cheap, reliable way to
// ask "which transactions hold positions below X". A sketch that could
// work: take positions in a short autocommit step, hold a GET_LOCK named
// after the claim until COMMIT (named locks die with their connection, so a
// crashed writer cannot wedge readers), and let a reader that meets a gap
// skip it only when IS_USED_LOCK says the claim's owner is gone and a fresh
// snapshot still lacks it. It needs a claims table (another write per
// append) and careful proofs; the counter row is simple, and provable with
// the suite's NoMissedEvents test.
//
// # Inline projections
//
// WithInline registers a projection.ReadModel[*sql.Tx] whose tables live in
// the same database: every append calls its Apply in the append's own
// transaction, after inserting the records, with the records read back as
// ReadAll returns them (Data as stored, encrypted or not; RecordedAt from
// the server). So after Append returns the read model shows the append
// (read-your-writes); if Apply fails the transaction rolls back and Append
// returns an *eventsource.InlineProjectionError: nothing is stored, the
// head, the stream and the read models are as they were. (A deadlock or
// lock wait timeout in Apply is retried with the whole append, like the
// store's own.) An exact retry stores nothing and applies nothing. The same
// read model can be rebuilt by a projection.Projector. Several projections
// run in the order given.
//
// Each projection's position, the last position of the log it has seen, is
// its row in {prefix}inline_projections (migration 005). Open (or the first
// Append, for New) creates the row and, when IsInitialized says the read
// model is not there, sets the position to 0 and calls Init, in a
// transaction of its own and outside any append (MySQL commits DDL at
// once; Init must be re-runnable, CREATE TABLE IF NOT EXISTS), under a
// GET_LOCK named after the projection so that processes starting together
// init once. It then applies what the global log shows after the position,
// a batch (WithBatchSize) per transaction that holds the row FOR UPDATE and
// moves it, so a projection added to a store with history covers all of it.
//
// Why nothing is missed or applied twice: appends take the position counter
// in turn and hold it to COMMIT (Global order), so when an append has it,
// every lower position has committed, and takePositions has checked that
// they are visible to its read view. The append then locks each
// projection's row (after the counter: one lock order for every append;
// catch-up batches lock only the row) and reads its position with that
// lock, so it sees the position the last append or catch-up committed.
// Positions between it and the append's first were appended without the
// option (by a Store without it, another process, the command-line tool);
// the append applies what the global log shows of them first, then its own
// records, and moves the position to its last, all in its transaction. Two
// appends never hold one row at once, so a record is applied once. Records
// a stream's rules retired before the projection saw them are skipped, as
// ReadAll skips them; an append's own records are applied even when its
// MaxCount retires some at once.
//
// The cost: an inline projection lengthens the serial window of every
// append (the counter is held for the read-back, the row lock, Apply and
// the position update): about 4 round trips plus Apply, see BENCHMARKS.md.
//
// # Stream lifecycle
//
// What a stream's metadata and deletes retire (eventsource.StreamLifecycle)
// is retired logically, at once; only Scavenge removes it physically.
//
// A stream's metadata and retention are its row in {prefix}stream_rules:
// meta (the metadata document, as storekit.EncodeStreamMetadata writes it),
// meta_version, and the storekit.Retention reads apply: cut (the first
// visible version; math.MaxInt64 once the stream is tombstoned),
// max_age_ns and since (what an earlier MaxAge retired). Only streams with
// metadata or a delete have a row, marked by {prefix}streams.ruled; rows
// are never deleted. A stream with metadata and no events has a streams row
// at version 0. SetStreamMetadata, DeleteStream (a soft delete: metadata
// with TruncateBefore = its version + 1) and TombstoneStream each lock the
// stream's row, then its rules row, and write the rules, with the new
// retention, in one transaction; the deletes delete the stream's snapshots
// in it too.
//
// An append to a stream without rules costs what it did before streams had
// rules: its first statement refuses a ruled row (WHERE NOT ruled; the Any
// upsert tells by LAST_INSERT_ID). A ruled stream's append, like a
// conflict, then reads the stream's row and its rules row in one locking
// read: a tombstone that committed refuses the append, one still to commit
// waits for it (it holds the stream's row), NoStream accepts a
// soft-deleted stream; then one UPDATE moves the version and, with
// MaxCount, the cut, in the append's transaction (two statements more,
// only for ruled streams).
//
// From the commit of a rule on, every query hides what it retires:
// ReadStream reads the stream's rules (and, for a stream that has some, its
// version) with each batch (primary-key lookups of a constant, done once
// while the query is planned), starts its version range at the cut and
// tests the rest in the same query; ReadAll
// tests each record in its page query, with subqueries that cost one
// uncorrelated lookup per page while no stream has rules and, once some do,
// one lookup per stream of the page (MariaDB's subquery cache), plus one
// per record of a ruled stream; ListStreams leaves out streams whose cut is
// above their version. MaxAge is measured by the server's clock
// (UTC_TIMESTAMP(6), which recorded the records) when the query runs. The
// retired records stay in {prefix}events: their event IDs stay taken (an
// append that retries them is an exact retry) and their positions in the
// log.
//
// Scavenge removes them. For each stream whose retention retires anything,
// in stream ID order, one transaction locks the stream's row and deletes
// from {prefix}events the rows the readers' visibility test leaves out; a
// large stream is one large transaction. That frees their event IDs.
// Positions are not reused (the counter only grows), the stream's version
// stays in {prefix}streams, so appends continue after it, and the rules row
// stays: a tombstone is for good.
//
// # Durability
//
// An append returns after COMMIT, so it is as durable as the server makes a
// commit: with innodb_flush_log_at_trx_commit=1 (the default; the test
// server runs with it) the redo log is flushed at each commit; with 0 or 2 a
// crash (or, for 2, an OS crash) can lose the last second of appends. With
// the binary log on, sync_binlog=1 is needed for the binlog to agree (the
// test server has the binary log off). As with any InnoDB commit, a record
// becomes visible to readers a moment before its redo log is flushed; a
// server crash in that moment can lose a record a subscriber has seen.
//
// # Reads
//
// ReadStream and ReadAll fetch WithBatchSize records per query (keyset
// pagination, no OFFSET) and release the connection between batches, and
// leave out what the streams' rules retire (see Stream lifecycle). Filters
// run in SQL with placeholders: stream IDs and types with IN lists, prefixes
// with LEFT(stream_id, len) = prefix (no LIKE, so % and _ match only
// themselves), metadata with JSON_CONTAINS on the same JSON encoding the
// store writes; every record is also checked with Filter.Match, so the
// result is exactly Match's.
//
// # Live signal
//
// MySQL has no LISTEN/NOTIFY. Notify wakes at once for appends made through
// the same Store, and polls the head of the log (WithPollInterval, 100ms by
// default) for appends from other processes.
//
// # Connection settings
//
// New works with any DSN: parseTime, loc and clientFoundRows do not change
// its behaviour. Open adds interpolateParams=true (one round trip per
// statement instead of prepare/execute/close) and parseTime=true.
package mysql

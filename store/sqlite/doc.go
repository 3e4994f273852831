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
// Tables {prefix}events and {prefix}schema_migrations
// ("es_" by default, see WithTablePrefix), created or upgraded on first use
// by the embedded, numbered migrations (see Migrate). Event metadata is a JSON
// object; global-log filters, including metadata matches, run in SQLite.
//
// # Limits
//
// Data up to WithMaxDataSize (1 MiB by default), 65,536 records and 64 MiB
// (eventsource.AppendSize) per append, the portable metadata limits: see
// Limits.
package sqlite

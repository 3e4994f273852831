// Package nats is an eventsource.Store on NATS JetStream (nats.go's jetstream
// package), for NATS server 2.9 or later. Besides the Store contract it
// implements eventsource.Notifier, HeadReader, StreamLister, StreamDeleter,
// StreamLifecycle, Scavenger and SnapshotStore.
//
//	nc, _ := nats.Connect("nats://127.0.0.1:4222")
//	js, _ := jetstream.New(nc)
//	store := esnats.New(js, esnats.WithStreamName("EVENTS"), esnats.WithSubjectPrefix("es"))
//	defer store.Close()
//	repo := eventsource.New(&User{}, eventsource.WithStore(store))
//
// or, with a connection the store owns: store, err := esnats.Open(ctx, url).
//
// # Layout
//
// The store uses three JetStream streams, created on first use (or by
// Setup), and a fourth for snapshots:
//
//   - <name> (WithStreamName, "EVENTS" by default) on subjects <prefix>.>
//     (WithSubjectPrefix, "es" by default) holds the events: one message per
//     append (a commit), on the subject <prefix>.<encoded stream ID>, and
//     the markers of lifecycle writes on the same subject (see "Stream
//     lifecycle").
//   - <name>_IDS on <prefix>-ids.> is the event ID index: one message (a
//     claim) per event ID, keeping the last per subject.
//   - <name>_META on <prefix>-meta.> is the lifecycle index: one message per
//     stream that has metadata, a retention rule or a delete, keeping the
//     last per subject.
//   - <name>_SNAPSHOTS (see SaveSnapshot), made by the first snapshot.
//
// A stream ID may hold any UTF-8 but NUL, including '.', '*', '>' and spaces,
// none of which may appear in a subject token. It is encoded into one token,
// reversibly and canonically: ASCII letters, digits, '-' and '_' stand for
// themselves, and every other byte becomes '~' and two upper-case hex digits
// ("user-1" → "user-1", "a.b" → "a~2Eb", "with space" → "with~20space",
// "é" → "~C3~A9"). Readable IDs stay readable in the nats CLI; a 255-byte ID
// takes at most 765 bytes of subject. Event IDs are encoded the same way.
//
// # Appends: atomic on 2.9
//
// NATS 2.9 has no atomic batch publish (2.12 added one), so an append is one
// message whose body holds all its records: a compact binary envelope (a
// format byte, the first version, the count, then each record's event ID,
// type, codec, data and metadata, length-prefixed). One publish is atomic by
// construction. The largest append is therefore one message: the server's
// max_payload (1 MiB by default, at most 64 MiB), headers included. Limits
// declares what fits (1,048,050 bytes of eventsource.AppendSize, so 19,774
// records at most, with the default max_payload); a larger append fails
// with eventsource.ErrTooLarge before anything is sent. WithMaxDataSize
// still bounds each record's Data, to no more than fits one message
// (1,047,997 bytes with the default max_payload).
//
// Optimistic concurrency uses the expected last *subject* sequence
// (Nats-Expected-Last-Subject-Sequence), never the stream-wide one, so
// writers of different streams never conflict. To append at version N the
// store needs the sequence of the commit ending at N: it reads the subject's
// last message (or remembers what its own last append to that stream
// returned), checks the version, and publishes with that sequence (0 for a
// new stream). "Wrong last sequence" (JetStream error 10071) means another
// append won: the result is an *eventsource.ConcurrencyError with the actual
// version. With eventsource.Any the store re-reads and retries until it
// lands or ctx ends (after a few quick rounds it backs off a little, with
// jitter, so writers racing one stream take turns). A commit with event IDs
// the caller supplied carries a Nats-Msg-Id (a hash of its stream and those
// IDs), so the server's duplicate window (WithDuplicateWindow) drops a
// resent copy.
//
// # Event IDs are unique across streams
//
// The contract makes event IDs unique in the whole store and makes a retried
// append (same event IDs, same expected version) return the original result.
// JetStream cannot check a second key in the same publish, so the store
// keeps two kinds of ID apart.
//
// IDs the store generates (records appended with an empty EventID, which is
// what Repository.Save does) are not stored at all: an ID is derived from
// the record's place when it is read, a UUID version 8 holding the commit's
// sequence, the record's index in it and 58 check bits of its stream ID and
// version (layout in eventid.go). Two records never share a place, so these
// IDs are unique by construction and cost nothing at append time; they sort
// in position order. The ID also says where its event is: an append that
// supplies such an ID (one read back from the store) is checked against that
// place, one direct get: if the record there has this ID, the append is an
// idempotent retry when it is exactly what is stored from there, else
// eventsource.ErrDuplicateEvent. An ID in this layout whose place is gone
// (its stream was deleted) or that another store made is an ordinary
// supplied ID. The derived IDs rest on JetStream sequences, as positions do:
// a copy of the events stream that renumbers them (a JetStream source) gives
// its records other IDs and positions; a mirror or a backup keeps both.
//
// IDs the caller supplies are claimed in the index before the commit: a
// message on <prefix>-ids.<encoded ID> published with expected subject
// sequence 0, naming the stream, the version the event is to get and a token
// of the append. Claims of one append are published together (about one
// round trip); then the commit is published. A claim that already exists is
// judged by the place it names:
//
//   - that place holds this event: the ID is stored. The append is an
//     idempotent retry if it matches what is stored from there (the original
//     AppendResult), else eventsource.ErrDuplicateEvent;
//   - that place holds another event: the claimant's commit can never land
//     (its expected sequence is gone), so the claim is dead and is taken
//     over, with an expected-sequence check on the claim itself;
//   - that place is still empty: another append is in flight, or died
//     between its claims and its commit. If it is exactly the place this
//     append wants, it is taken over (both commits expect the same subject
//     sequence, so at most one lands); otherwise the append fails with
//     ErrDuplicateEvent. A dead claim of this kind frees itself once its
//     stream grows past the claimed version.
//
// An append refused for sure (a conflict, a duplicate, a cancelled context
// before the publish) deletes its claims. One whose publish failed
// ambiguously (a timeout) keeps them: a retry with the same event IDs finds
// them and resolves as above. Scavenge deletes the claims of the events it
// removes, so their IDs can be used again; until then a retired event's ID
// stays taken, as the contract says.
//
// The cost: an append of generated IDs is one publish, about as fast as a
// raw publish with the same expectation (see BENCHMARKS.md). An append of
// supplied IDs writes each event twice (its claim, then the commit): two
// round trips, and the index grows by one small message per supplied ID.
// Rejected: claiming every ID (halves throughput); checking supplied IDs
// only against each other (an ID read back from the store and supplied in
// another stream would be stored twice); the server's duplicate window
// alone (it forgets after minutes); a check after the commit (not atomic
// with it).
//
// # Global positions
//
// A record's position is its commit's stream sequence << 16 | its index in
// the commit (0..65535; eventsource.MaxRecordsPerCall is 65,536). JetStream
// assigns sequences in the order it stores messages, and a message is
// readable once stored, so a reader that has seen position P never meets a
// newly committed record at or below P. Positions are sparse (they grow by
// 65,536 per commit): use them as an order and a checkpoint, not a count.
// Sequences stay below 2^48, far beyond any stream's life.
//
// # Reads
//
// ReadStream first reads the stream's last message; when that is a commit
// holding the first wanted version (loading an aggregate whose last append
// carried the rest, or reading a recent tail) it is the only request (one
// more for a stream with lifecycle state: its index entry). Otherwise it needs the
// commit that holds its first version: from version 1 (or within the first
// WithBatchSize versions) that is the stream's first commit; further in, it
// is found by bisection over the sequences, one direct get (STREAM.MSG.GET
// with next_by_subj) per step, about log2(messages in the store) requests,
// instead of a scan of the stream's earlier commits. From there, a read of
// at most eight commits takes one direct get each; a longer one uses an
// ephemeral consumer (AckNone, in memory, deleted after the read, expiring
// after a minute if the reader dies) fetched WithBatchSize commits at a
// time. ReadAll does the same from the commit of its start position, after
// one request for the log's last sequence: polling the tail costs that one
// request (and a page that yields records one more: "Stream lifecycle").
//
// Every read ends at the last message that existed when it started (later
// ones are for the next read), never on the consumer's count of pending
// messages: NATS 2.9 miscounts it for a wildcard filter (too many or too
// few, by map order), which left reads waiting for commits that did not
// exist or ending early. So ReadAll's consumer is unfiltered (the stream
// holds only the store's subjects), and a fetch that comes back empty is
// checked with a direct get before the read ends (the last commit may have
// been scavenged or expired since). A filter with exactly one stream (and no prefixes)
// is pushed down as the subject filter. Other filters are applied in Go
// with eventsource.Filter.Match: stream-ID prefixes cannot be pushed down
// (subject wildcards match whole tokens) and 2.9 has one filter subject per
// consumer. Iterators release their consumer on an early break and end
// with ctx's error when it is cancelled.
//
// Head reads the stream's last sequence and that commit's size. ListStreams
// asks the server for the subjects of the events stream (all of them),
// decodes, filters and sorts them in memory, then reads each listed stream's
// version (and, for a stream with lifecycle state, its index entry, to
// leave out a deleted one).
//
// Notify: appends through this Store signal at once; appends of other
// processes arrive through one ordered consumer (new messages, headers only)
// started on the first Notify and stopped by Close.
//
// # Stream lifecycle: what is physical and what is logical
//
// Metadata, retention rules (TruncateBefore, MaxCount, MaxAge) and deletes
// are logical: they write, and nothing is removed but a deleted stream's
// snapshots. What they retire stays stored, hidden from ReadStream, ReadAll
// and ListStreams from the moment the write returns, in every process,
// until Scavenge removes it.
//
// Physically, a stream's lifecycle state (its metadata document, metadata
// version and storekit.Retention) is one JSON message in <name>_META on
// <prefix>-meta.<encoded stream ID>; the metadata version check is that
// subject's expected last sequence. Every lifecycle write also puts a
// marker (a few bytes: the stream's version, and which index message it
// commits) on the stream's own subject in the events stream, with the
// expected sequence of the stream's last message, so it is ordered with the
// stream's appends exactly as appends are with each other:
//
//   - a hard delete (TombstoneStream) is a marker flagged as such; every
//     later append expects the sequence of the stream's last message, so it
//     either reads the marker or fails its expectation and reads it, and
//     refuses (*eventsource.StreamDeletedError). No append ever follows it.
//   - a soft delete (DeleteStream) writes TruncateBefore = version + 1 at
//     the version where its marker lands: with an exact expected version,
//     right after the commit it checked (an append in between makes it
//     check again, and fail); with Any or StreamExists after whatever
//     appends come first. The next append continues the versions.
//   - MaxCount: appends do not write the index. The cut is the stream's
//     version - MaxCount + 1, computed where it is needed from the stream's
//     version (which ReadStream reads anyway), and the cut of an earlier
//     MaxCount is fixed into the state by the write that changes it, at the
//     version its marker lands at: exactly what moving the cut in every
//     append would give, at no cost to the append.
//   - A commit that follows a marker has a format byte saying so (the
//     append copies it from the message it follows), so a read knows from
//     the stream's last message alone whether to read the index: a stream
//     that never had lifecycle state costs ReadStream and Append nothing.
//
// NATS 2.9 cannot publish to two streams at once, so a lifecycle write is a
// two-step commit: its intent in the index first (naming the state before
// it, the change, and the stream's last message it was checked against),
// then the marker (the commit point), then the committed state in the
// index. Whoever reads an intent looks after its basis on the stream's
// subject for its marker: there, the write is in force; not there, the
// state before it is. The intent is in the index before the marker can
// exist, so no reader that consults the index after the commit point misses
// the write. A writer that dies between the steps leaves an intent that
// the next lifecycle write or Scavenge of that stream (or a reader, once it
// is a minute old) completes, by publishing the marker where the write is
// still valid or recording that it can no longer land. So a lifecycle call
// that fails (a lost connection, a cancelled context) after its first step
// may still take effect, as a timed-out append may. A write costs two reads
// and three publishes, four for the deletes (they purge snapshots before
// and after the marker, so a snapshot saved meanwhile goes too).
//
// ReadStream of a stream with lifecycle state reads its index entry (one
// request more) and starts at max(from, cut), leaving out what MaxAge
// retires by the reader's clock. ReadAll keeps, per Store, a copy of the
// index entries that retire something: after each page is fetched, one
// request (the index stream's info) says whether the index changed since
// the copy was made, and what changed is read from where it stopped; pages
// read concurrently share a check begun after both were fetched. A stream
// with MaxCount costs ReadAll one request per page that holds its records
// (its version). A store with no rules pays the one request per page that
// yields records (a page is WithBatchSize commits, or the few a short read
// fetches one by one); see BENCHMARKS.md. The copy holds one entry per
// stream with a rule, in memory.
//
// Scavenge removes, stream by stream in stream ID order, the commits whose
// records are all retired, up to the stream's first commit that holds a
// visible record: one JetStream purge of the stream's subject below that
// sequence (atomic; sequences, so positions, are never reused), after the
// stream's index entry is settled (an intent's marker must not go before it
// is recorded). Markers before that point go too. It then deletes the index
// claims of the event IDs the removed commits held. It keeps each stream's
// last message, which holds the stream's version: a tombstone or delete
// marker, or a commit retired by MaxAge (then hidden, not removed, until
// the stream's next write).
//
// What JetStream cannot do: a commit is one message (one append, atomic
// without batch publish on 2.9) and a message cannot be edited, so a commit
// holding both retired and visible records (an append of five records,
// truncated before its fourth) stays whole, its retired records hidden,
// until a later rule or delete retires the rest of it. ScavengeResult.Removed
// counts the records of the commits purged, so it can be less than the
// number of retired records; the conformance suite's Scavenge test, whose
// appends of several records are truncated in the middle, expects every
// retired record to be removed and fails on that count for this store
// (TestScavengeWholeCommits runs the same scenario with one record per
// append). Rewriting the commit would give its records new sequences, hence
// new positions, which the contract forbids.
//
// # Durability: read this before production
//
// An append returns when JetStream has stored the commit. With file storage
// (the default), NATS writes to the file at once but fsyncs only every
// sync_interval, 2 minutes by default: a server or machine crash can lose
// appends that were acknowledged in the last two minutes (never half of
// one). To make an acknowledged append survive a crash, either set
// `jetstream { sync_interval: always }` in the server configuration (an fsync
// per message, much slower) or run a cluster with WithReplicas(3), where an
// append is acknowledged once a majority has it and a single crash loses
// nothing. WithMemoryStorage keeps nothing across restarts.
//
// Other options: WithMaxAge and WithMaxBytes (DiscardNew: a full store
// refuses appends rather than dropping old events) for bounded stores,
// WithDuplicateWindow, WithMaxDataSize, WithBatchSize, WithLogger.
// WithMaxAge is the server discarding messages behind the store's back, so
// it is outside the lifecycle contract: a stream whose messages have all
// expired starts again at version 1, and reads of it know nothing of its
// rules or deletes but what the index holds (a hard delete still refuses
// appends: with WithMaxAge an append to a stream with no message reads the
// index first). The stream metadata rule MaxAge with Scavenge is the way
// to expire events that keeps the contract.
//
// # Why 2.9
//
// The store needs per-subject expected sequences (2.6.2), headers-only
// consumers and direct next-by-subject gets (2.9), and ephemeral consumers
// with an inactive threshold and names (2.9). It uses nothing newer, so one
// multi-event append must be one message, and a lifecycle write a two-step
// commit. It is tested on 2.9 and on the newest server (in process).
//
// # Upgrading
//
// Stores set up by an earlier version of this package have no
// <name>_META: the first use (or Setup) creates it. With WithoutAutoSetup,
// reads and appends work without it; lifecycle writes and Verify report it
// missing until Setup runs. The earlier DeleteStream removed a stream's
// commits and restarted its versions at 1; a delete it left unfinished is
// finished that way by the next process to read the stream's head. Streams
// deleted that way have no trace left, so they start at 1 too.
package nats

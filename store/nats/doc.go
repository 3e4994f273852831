// Package nats is an eventsource.Store on NATS JetStream (nats.go's jetstream
// package), for NATS server 2.9 or later. Besides the Store contract it
// implements eventsource.Notifier, HeadReader, StreamLister and
// StreamDeleter.
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
// The store uses two JetStream streams, created on first use (or by Setup):
//
//   - <name> (WithStreamName, "EVENTS" by default) on subjects <prefix>.>
//     (WithSubjectPrefix, "es" by default) holds the events: one message per
//     append (a commit), on the subject <prefix>.<encoded stream ID>.
//   - <name>_IDS on <prefix>-ids.> is the event ID index: one message (a
//     claim) per event ID, keeping the last per subject.
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
// them and resolves as above. DeleteStream deletes the claims of the events
// it removes, so their IDs can be used again.
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
// ReadStream first reads the stream's last commit; when that holds the first
// wanted version (loading an aggregate whose last append carried the rest,
// or reading a recent tail) it is the only request. Otherwise it needs the
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
// request.
//
// Every read ends at the last message that existed when it started (later
// ones are for the next read), never on the consumer's count of pending
// messages: NATS 2.9 miscounts it for a wildcard filter (too many or too
// few, by map order), which left reads waiting for commits that did not
// exist or ending early. So ReadAll's consumer is unfiltered (the stream
// holds only the store's subjects), and a fetch that comes back empty is
// checked with a direct get before the read ends (the last commit may have
// been deleted since). A filter with exactly one stream (and no prefixes)
// is pushed down as the subject filter. Other filters are applied in Go
// with eventsource.Filter.Match: stream-ID prefixes cannot be pushed down
// (subject wildcards match whole tokens) and 2.9 has one filter subject per
// consumer. Iterators release their consumer on an early break and end
// with ctx's error when it is cancelled.
//
// Head reads the stream's last sequence and that commit's size. ListStreams
// asks the server for the subjects of the events stream (all of them),
// decodes, filters and sorts them in memory, then reads each listed stream's
// version. DeleteStream publishes a tombstone on the stream's subject,
// with the expected sequence of the commit it checked (so it is atomic with
// the check; under writers that never pause, Any gives up the expectation
// after a few rounds and deletes whatever precedes the tombstone), then
// purges the subject up to it. The next append starts the stream again at
// version 1; positions are never reused. A tombstone left by a process that
// died before its purge is finished by the next one to append to (or read
// the head of) that stream; until then ReadStream sees an empty stream,
// while ReadAll still yields the old commits.
//
// Notify: appends through this Store signal at once; appends of other
// processes arrive through one ordered consumer (new messages, headers only)
// started on the first Notify and stopped by Close.
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
//
// # Why 2.9
//
// The store needs per-subject expected sequences (2.6.2), headers-only
// consumers and direct next-by-subject gets (2.9), and ephemeral consumers
// with an inactive threshold and names (2.9). It uses nothing newer, so one
// multi-event append must be one message. It is tested on 2.9 and on the
// newest server (in process).
package nats
